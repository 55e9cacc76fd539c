// hippo eval: perplexity and bits per byte of a trained model on a corpus split.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>

#include "apps/commands.h"
#include "core/error.h"
#include "core/threads.h"
#include "data/corpus.h"
#include "data/lm_batches.h"
#include "data/tokenizer.h"
#include "models/load.h"
#include "models/memory_check.h"
#include "train/checkpoint.h"
#include "train/lm_eval.h"

namespace hippo::cli {

namespace {

struct EvalCli {
  std::string model;
  std::string data = "brown";
  std::string split = "test";
  std::string tokenizer;  // default: the one recorded in the model file
  std::string cache_dir = "data/cache";
  int seq_len = 256;
  int batch_size = 16;
  int64_t max_tokens = 0;
  int threads = 0;
};

int run_eval(const EvalCli& o) {
  set_num_threads(o.threads);
  // Memory-mapped like hippo generate: fp32 weights used in place, bf16 weights stay bf16.
  std::map<std::string, std::string> meta;
  const std::unique_ptr<LanguageModel> loaded = load_model_mapped(o.model, &meta);
  LanguageModel& model = *loaded;
  if (o.tokenizer.empty())
    HIPPO_CHECK(meta.count(kTokenizerKey), o.model, ": no tokenizer recorded in __metadata__.",
                kTokenizerKey, "; pass --tokenizer");
  const std::string tok_spec = o.tokenizer.empty() ? meta[kTokenizerKey] : o.tokenizer;
  auto tok = o.tokenizer.empty() ? tokenizer_from_metadata(meta, o.model) : load_tokenizer(o.tokenizer);
  HIPPO_CHECK(tok->vocab_size() <= model.config().vocab_size, o.model, ": the model's vocab_size ",
              model.config().vocab_size, " is smaller than tokenizer ", tok_spec, "'s ", tok->vocab_size());
  const std::string path = resolve_corpus_path(o.data);
  const Split split = parse_split(o.split);
  TokenCache toks = split_tokens(path, split, *tok, default_cache_path(o.cache_dir, path, split, *tok));
  // Windows longer than the split give the same predictions as one window of the whole split,
  // so L is capped there (an -L of a million on a small split would allocate for nothing);
  // what remains must leave room in memory for the logits, at least.
  const int L = static_cast<int>(std::min<int64_t>(o.seq_len, std::max<int64_t>(1, static_cast<int64_t>(toks.size()) - 1)));
  const int64_t windows = lm_eval_windows(toks, L);
  const int B = static_cast<int>(std::min<int64_t>(o.batch_size, std::max<int64_t>(windows, 1)));
  const uint64_t logit_bytes = static_cast<uint64_t>(B) * static_cast<uint64_t>(L) *
                               static_cast<uint64_t>(model.config().padded_vocab()) * sizeof(float);
  const uint64_t avail = available_memory_bytes();
  HIPPO_CHECK(avail == 0 || logit_bytes <= avail, "eval: -b ", B, " windows of -L ", L,
              " tokens need ~", logit_bytes >> 20, " MiB for the logits alone, more than the ",
              avail >> 20, " MiB available; lower --batch-size or --seq-len");
  const std::vector<int32_t> bytes = token_byte_lengths(*tok);
  const bool tty = isatty(STDERR_FILENO);
  EvalResult r = evaluate_lm(model, toks, L, B, &bytes, o.max_tokens,
                             [tty](int64_t done, int64_t total) {
                               if (!tty) return;
                               const int width = 40;
                               const int fill = static_cast<int>(width * done / std::max<int64_t>(total, 1));
                               std::fprintf(stderr, "\r[%s%s] %lld/%lld windows",
                                            std::string(fill, '#').c_str(),
                                            std::string(width - fill, '.').c_str(),
                                            static_cast<long long>(done), static_cast<long long>(total));
                               if (done == total) std::fprintf(stderr, "\n");
                             });
  // A NaN or Inf loss is no measurement: fail rather than print "perplexity nan" with success.
  HIPPO_CHECK(std::isfinite(r.metrics["loss"]), o.model, ": the loss on ", path, " (", o.split,
              " split, ", r.metrics["tokens"], " tokens) is ", r.metrics["loss"],
              ": the model's outputs are not finite");
  std::printf("%s %s split: %.0f tokens  loss %.4f  perplexity %.3f  bits/byte %.4f\n", path.c_str(),
              o.split.c_str(), r.metrics["tokens"], r.metrics["loss"], r.metrics["ppl"], r.metrics["bpb"]);
  return 0;
}

}  // namespace

void add_eval(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<EvalCli>();
  auto* c = app.add_subcommand("eval", "Perplexity and bits per byte on a corpus split");
  c->add_option("-m,--model", o->model, "Model weights (.safetensors from hippo train)")->required();
  c->add_option("-d,--data", o->data, "brown | a text file or folder of .txt files")->capture_default_str();
  c->add_option("--split", o->split, "train | validation | test")->capture_default_str();
  c->add_option("--tokenizer", o->tokenizer, "Override the model's tokenizer (byte | gpt2:DIR)");
  c->add_option("-L,--seq-len", o->seq_len, "Tokens per window")->capture_default_str()
      ->check(CLI::Range(1, 1 << 24));
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
