// hippo eval: perplexity and bits per byte of a trained model on a corpus split. The work is
// hippo::evaluate (include/hippo/train.hpp).
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "apps/commands.h"
#include "hippo/train.hpp"

namespace hippo::cli {

namespace {

int run_eval(EvaluationOptions o) {
  if (isatty(STDERR_FILENO))
    o.on_progress = [unit = o.seq_len == 0 ? "documents" : "windows"](int64_t done, int64_t total) {
      const int width = 40;
      const int fill = static_cast<int>(width * done / std::max<int64_t>(total, 1));
      std::fprintf(stderr, "\r[%s%s] %lld/%lld %s", std::string(fill, '#').c_str(),
                   std::string(width - fill, '.').c_str(), static_cast<long long>(done),
                   static_cast<long long>(total), unit);
      if (done == total) std::fprintf(stderr, "\n");
    };
  const EvaluationResult r = evaluate(o);
  std::printf("%s %s split: %.0f tokens  loss %.4f  perplexity %.3f  bits/byte %.4f\n", r.corpus.c_str(),
              o.split.c_str(), r.tokens, r.loss, r.perplexity, r.bits_per_byte);
  return 0;
}

}  // namespace

void add_eval(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<EvaluationOptions>();
  auto* c = app.add_subcommand("eval", "Perplexity and bits per byte on a corpus split");
  c->add_option("-m,--model", o->model, "Model weights (.safetensors from hippo train)")->required();
  c->add_option("-d,--data", o->data, "brown | a text file or folder of .txt files")->capture_default_str();
  c->add_option("--split", o->split, "train | validation | test")->capture_default_str();
  c->add_option("--tokenizer", o->tokenizer, "Override the model's tokenizer (byte | gpt2:DIR)");
  c->add_option("-L,--seq-len", o->seq_len,
                 "Tokens per window; 0: each document as one sequence of its full length "
                 "(chunked, memory independent of the length)")->capture_default_str()
      ->check(CLI::Range(0, 1 << 24));
  c->add_option("--position-csv", o->position_csv,
                "With -L 0: write bits per byte by position in the document (buckets 1, 2-3, "
                "4-7, ...) to this .csv file");
  c->add_option("-b,--batch-size", o->batch_size, "Windows per batch")->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  c->add_option("--max-tokens", o->max_tokens, "Evaluate at most this many tokens (0: all)")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, INT64_MAX));
  c->add_option("--cache-dir", o->cache_dir, "Where tokenized corpora are cached")->capture_default_str();
  c->add_option("-t,--threads", o->threads, "Threads (0: all cores)")->capture_default_str()
      ->check(CLI::Range(0, 1024));
  c->callback([&run, o] { run = [o] { return run_eval(*o); }; });
}

}  // namespace hippo::cli
