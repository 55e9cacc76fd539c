// hippo::evaluate (include/hippo/train.hpp): perplexity and bits per byte of a model file on a
// corpus split, as `hippo eval` reports them.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include <cstdio>

#include "core/error.h"
#include "core/threads.h"
#include "data/corpus.h"
#include "data/lm_batches.h"
#include "data/tokenizer.h"
#include "hippo/train.hpp"
#include "io/output_path.h"
#include "io/safetensors.h"
#include "models/load.h"
#include "models/memory_check.h"
#include "train/lm_eval.h"

namespace hippo {

namespace {

// --seq-len 0: every document whole through the chunked path, and the position CSV.
EvaluationResult evaluate_documents(const EvaluationOptions& o, const LanguageModel& model,
                                    const Tokenizer& tok, const TokenCache& toks,
                                    const std::string& path) {
  if (!o.position_csv.empty())
    check_output_path(o.position_csv, "--position-csv", {o.model, path}, "CSV file",
                      [](const std::string& p) {
                        return p.size() >= 4 && p.substr(p.size() - 4) == ".csv"
                                   ? std::string()
                                   : std::string("it is not a .csv file");
                      });
  const std::vector<int32_t> bytes = token_byte_lengths(tok);
  std::vector<PositionBucket> buckets;
  EvalResult r = evaluate_lm_documents(model, toks, tok.eot_id(), &bytes, o.max_tokens,
                                       o.on_progress, o.position_csv.empty() ? nullptr : &buckets);
  HIPPO_CHECK(std::isfinite(r.metrics["loss"]), o.model, ": the loss on ", path, " (", o.split,
              " split, ", r.metrics["tokens"], " tokens) is ", r.metrics["loss"],
              ": the model's outputs are not finite");
  if (!o.position_csv.empty()) {
    std::string csv = "position_first,position_last,tokens,bytes,loss,bits_per_byte\n";
    char line[256];
    for (const PositionBucket& b : buckets) {
      if (b.tokens == 0) continue;
      std::snprintf(line, sizeof line, "%lld,%lld,%lld,%lld,%.6f,%.6f\n",
                    static_cast<long long>(b.first), static_cast<long long>(b.last),
                    static_cast<long long>(b.tokens), static_cast<long long>(b.bytes),
                    b.nats / static_cast<double>(b.tokens),
                    b.bytes > 0 ? b.nats / std::log(2.0) / static_cast<double>(b.bytes) : 0.0);
      csv += line;
    }
    write_file_atomic(o.position_csv, csv);
  }
  return {path, r.metrics["tokens"], r.metrics["loss"], r.metrics["ppl"], r.metrics["bpb"]};
}

}  // namespace

EvaluationResult evaluate(const EvaluationOptions& o) {
  HIPPO_CHECK(o.seq_len >= 0 && o.seq_len <= (1 << 24), "--seq-len must be in [0, 16777216], got ", o.seq_len);
  HIPPO_CHECK(o.position_csv.empty() || o.seq_len == 0, "--position-csv needs --seq-len 0 (each "
              "document as one sequence)");
  HIPPO_CHECK(o.batch_size >= 1 && o.batch_size <= (1 << 16), "--batch-size must be in [1, 65536], got ",
              o.batch_size);
  HIPPO_CHECK(o.max_tokens >= 0, "--max-tokens must be >= 0, got ", o.max_tokens);
  HIPPO_CHECK(o.threads >= 0 && o.threads <= 1024, "--threads must be in [0, 1024], got ", o.threads);
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
  if (o.seq_len == 0) return evaluate_documents(o, model, *tok, toks, path);
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
  EvalResult r = evaluate_lm(model, toks, L, B, &bytes, o.max_tokens, o.on_progress);
  // A NaN or Inf loss is no measurement: fail rather than print "perplexity nan" with success.
  HIPPO_CHECK(std::isfinite(r.metrics["loss"]), o.model, ": the loss on ", path, " (", o.split,
              " split, ", r.metrics["tokens"], " tokens) is ", r.metrics["loss"],
              ": the model's outputs are not finite");
  return {path, r.metrics["tokens"], r.metrics["loss"], r.metrics["ppl"], r.metrics["bpb"]};
}

}  // namespace hippo
