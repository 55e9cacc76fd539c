// hippo::train (include/hippo/train.hpp): a model trained on a synthetic task or on text, as
// `hippo train` runs it. The loop itself is train/trainer.h; this is the setup around it.
#include "hippo/train.hpp"

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/threads.h"
#include "data/corpus.h"
#include "data/hash.h"
#include "data/lm_batches.h"
#include "data/shards.h"
#include "data/synthetic.h"
#include "data/synthetic_batches.h"
#include "data/tokenizer.h"
#include "models/lm.h"
#include "train/lm_eval.h"
#include "train/dist/communicator.h"
#include "train/synthetic_eval.h"
#include "train/trainer.h"

namespace hippo {

namespace {

// Ranges of the options the trainer does not check itself (validate_train_options checks the rest).
void validate(const TrainingOptions& o, const TrainOptions& t) {
  HIPPO_CHECK(o.batch_size >= 1 && o.batch_size <= 65536, "--batch-size must be in [1, 65536], got ",
              o.batch_size);
  HIPPO_CHECK(o.seq_len >= 1 && o.seq_len <= (1 << 20), "--seq-len must be in [1, 1048576], got ",
              o.seq_len);
  HIPPO_CHECK(static_cast<int64_t>(o.batch_size) * o.seq_len <= (int64_t{1} << 22),
              "--batch-size x --seq-len must be at most 4194304 tokens per micro-batch, got ",
              o.batch_size, " x ", o.seq_len);
  HIPPO_CHECK(o.threads >= 0 && o.threads <= 4096, "--threads must be in [0, 4096] (0: all cores), got ",
              o.threads);
  HIPPO_CHECK(!o.dropout || (*o.dropout >= 0 && *o.dropout < 1), "--dropout must be in [0, 1), got ",
              o.dropout.value_or(0));
  HIPPO_CHECK(o.eval_tokens >= 0, "--eval-tokens must be >= 0, got ", o.eval_tokens);
  HIPPO_CHECK(std::isfinite(o.dist_timeout) && o.dist_timeout >= 0,
              "--dist-timeout must be a finite number of seconds >= 0 (0: wait for ever), got ",
              o.dist_timeout);
  HIPPO_CHECK(std::isfinite(o.allreduce_bucket_mb) && o.allreduce_bucket_mb >= 0 &&
              o.allreduce_bucket_mb <= 1e6, "--allreduce-bucket-mb must be a number of MB in "
              "[0, 1e6] (0: one all-reduce after the backward), got ", o.allreduce_bucket_mb);
  HIPPO_CHECK(o.recompute == "auto" || o.recompute == "on" || o.recompute == "off",
              "--recompute must be auto, on or off, got '", o.recompute, "'");
  HIPPO_CHECK(o.grad_accum >= 0, "--grad-accum must be >= 1 (or 0: one per rank), got ", o.grad_accum);
  HIPPO_CHECK(o.data.rfind("synthetic:", 0) == 0 || (o.synth_vocab == 0 && o.synth_pairs == 0),
              "--vocab and --pairs size a synthetic task (-d synthetic:TASK); the data is '", o.data, "'");
  HIPPO_CHECK(!t.resume || !t.out_dir.empty(),
              "--resume needs -o DIR: the run folder whose checkpoint.safetensors to continue");
  validate_train_options(t);
}

// The trainer's options from the public ones.
TrainOptions trainer_options(const TrainingOptions& o) {
  TrainOptions t;
  t.steps = o.steps;
  t.grad_accum = o.grad_accum;
  t.allreduce_bucket_bytes = static_cast<size_t>(std::ceil(o.allreduce_bucket_mb * 1e6));
  t.adam.lr = o.lr;
  t.adam.weight_decay = o.weight_decay;
  t.warmup_steps = o.warmup;
  t.min_lr_ratio = o.min_lr_ratio;
  t.clip = o.clip;
  t.seed = o.seed;
  t.eval_every = o.eval_every;
  t.save_every = o.save_every;
  t.log_every = o.log_every;
  t.out_dir = o.out_dir;
  t.resume = o.resume;
  t.force = o.force;
  t.quiet = o.quiet;
  t.recompute = o.recompute == "on"    ? RecomputeMode::On
                : o.recompute == "off" ? RecomputeMode::Off
                                       : RecomputeMode::Auto;
  return t;
}

// What the training data is, by content: the train split's token count and the id checksum(s)
// from its file headers (TokenCache::content_hash), so a resume on other data is refused
// wherever the files now live, without reading a corpus larger than memory on every rank.
std::string data_fingerprint(const TokenCache& toks) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(toks.content_hash()));
  return str(toks.size(), " train tokens, fingerprint ", hex);
}

// The built-in default: a small hybrid H3-attention model, attention at layer 1 of 4
// ("one early", as in the paper's hybrids).
ModelConfig default_config(int vocab, bool synthetic) {
  nlohmann::json j = {{"vocab_size", vocab}, {"d_model", synthetic ? 64 : 128},
                      {"n_layer", synthetic ? 2 : 4}, {"d_state", 64}, {"attn_heads", synthetic ? 4 : 8}};
  j["layers"] = synthetic ? nlohmann::json{"h3", "attention"}
                          : nlohmann::json{"h3", "attention", "h3", "h3"};
  return ModelConfig::from_json(j, "built-in default config");
}

// The three token streams of text data.
struct TextSplits {
  std::optional<TokenCache> train, validation, test;
};

struct Run {
  const TrainingOptions& o;
  const TrainingCallbacks& cb;
  TrainOptions t;
  Communicator& comm;

  void info(const std::string& line) const {
    if (cb.on_info && comm.rank() == 0) cb.on_info(line);
  }

  // The data on every rank: rank 0 first (it builds any token cache), then the others, which
  // find the caches built (on a shared file system; else they build their own).
  template <typename F>
  auto rank0_first(F load) {
    std::optional<decltype(load())> v;
    if (comm.rank() == 0) v.emplace(load());
    comm.barrier();
    if (comm.rank() != 0) v.emplace(load());
    return std::move(*v);
  }

  // Runs the training loop; the watchdog's timeout applies from here on (data preparation
  // before it may take any time).
  TrainResult run_loop(LanguageModel& model, const BatchFn& batches, const EvalFn& eval, RunFolder* folder) {
    comm.set_timeout(o.dist_timeout);
    TrainResult r = hippo::train(model, t, batches, eval, folder, &comm);
    comm.set_timeout(0);
    return r;
  }

  std::unique_ptr<LanguageModel> make_model(int vocab, bool synthetic) const {
    ModelConfig cfg = o.config.empty() ? default_config(vocab, synthetic) : ModelConfig::load(o.config);
    HIPPO_CHECK(cfg.vocab_size >= vocab, o.config, ": vocab_size ", cfg.vocab_size,
                " is smaller than the data's vocabulary ", vocab);
    if (o.dropout) {
      cfg.dropout = *o.dropout;
      cfg.validate("--dropout");
    }
    auto model = std::make_unique<LanguageModel>(cfg);  // not movable: params point into it
    model->init(o.seed);
    info(str("model: ", cfg.n_layer, " layers (", layers_summary(cfg), "), d=", cfg.d_model, ", ",
             model->num_params(), " parameters"));
    return model;
  }

  TrainingResult result(const TrainResult& r, const LanguageModel& model) const {
    TrainingResult out;
    out.steps_done = r.steps_done;
    out.stopped = r.stopped_early;
    out.last_loss = r.last_loss;
    out.tokens_per_s = r.tokens_per_s;
    out.num_params = model.num_params();
    out.last_eval = r.last_eval.metrics;
    if (!o.out_dir.empty()) out.weights = o.out_dir + "/model.safetensors";
    out.rank = comm.rank();
    out.ranks = comm.size();
    return out;
  }

  TrainingResult synthetic(const std::string& task, RunFolder* folder) {
    SynthOptions so;
    so.task = parse_synth_task(task);
    so.seed = o.seed;
    so.vocab = o.synth_vocab;
    so.seq_len = o.synth_seq_len;
    so.pairs = o.synth_pairs;
    so.fill_defaults();
    SynthSplits data = make_synthetic(so);
    const std::unique_ptr<LanguageModel> model = make_model(so.vocab, true);
    t.run_settings["data"] = "synthetic:" + synth_task_name(so.task);
    t.run_settings["synthetic"] = str("vocab ", so.vocab, ", seq-len ", so.seq_len, ", pairs ", so.pairs);
    t.run_settings["batch-size"] = std::to_string(o.batch_size);
    info(str("task ", synth_task_name(so.task), ": ", data.train.n, " train / ", data.test.n,
             " test sequences"));
    const int B = o.batch_size, accum = t.grad_accum;
    const uint64_t seed = o.seed;
    const TrainResult r = run_loop(
        *model,
        [&](int64_t step, int micro, Batch& b) { synthetic_batch(data.train, seed, step * accum + micro, B, b); },
        [&](LanguageModel& m) { return evaluate_synthetic(m, data.test); }, folder);
    TrainingResult out = result(r, *model);
    out.synthetic = true;
    return out;
  }

  // The --val-data set: a shard file, a shard folder's validation.tok, or all of a text corpus.
  TokenCache explicit_validation(const Tokenizer& tok) {
    const std::string p = resolve_corpus_path(o.val_data);
    if (std::filesystem::path(p).extension() == ".tok") return TokenCache::open_shard(p, tok.id());
    if (is_shard_folder(p)) {
      TokenCache c = open_split_shards(p, Split::Validation, tok.id());
      c.verify(0, c.size());
      return c;
    }
    std::string cache = default_cache_path(o.cache_dir, p, Split::Validation, tok);
    cache.replace(cache.rfind(".validation."), 12, ".whole.");
    std::string why;
    TokenCache c = whole_corpus_tokens(p, tok, cache, &why);
    if (!why.empty()) info(str("tokenized --val-data ", p, " (", why, "): ", c.size(), " tokens"));
    return c;
  }

  TextSplits load_text(const std::string& path, const Tokenizer& tok) {
    TextSplits d;
    if (is_shard_folder(path)) {  // memory-mapped as they are; train checked where read (text())
      d.train.emplace(open_split_shards(path, Split::Train, tok.id()));
      if (o.val_data.empty()) {
        d.validation.emplace(open_split_shards(path, Split::Validation, tok.id()));
        d.validation->verify(0, d.validation->size());
      }
      d.test.emplace(open_split_shards(path, Split::Test, tok.id()));
      d.test->verify(0, d.test->size());
    } else {
      auto split = [&](Split s) {
        std::string why;
        TokenCache c = split_tokens(path, s, tok, default_cache_path(o.cache_dir, path, s, tok), &why);
        if (!why.empty()) info(str("tokenized ", split_name(s), " split (", why, "): ", c.size(), " tokens"));
        return c;
      };
      d.train.emplace(split(Split::Train));
      if (o.val_data.empty()) d.validation.emplace(split(Split::Validation));
      d.test.emplace(split(Split::Test));
    }
    if (!o.val_data.empty()) d.validation.emplace(explicit_validation(tok));
    HIPPO_CHECK(d.validation->size() >= 2, "--val-data ", o.val_data, ": ", d.validation->size(),
                " tokens, too few to evaluate on");
    return d;
  }

  TrainingResult text(RunFolder* folder) {
    const std::string path = resolve_corpus_path(o.data);
    auto tok = load_tokenizer(o.tokenizer);
    TextSplits data = rank0_first([&] { return load_text(path, *tok); });
    const TokenCache& train_toks = *data.train;
    const TokenCache& val_toks = *data.validation;
    const TokenCache& test_toks = *data.test;
    info(str(is_shard_folder(path) ? "shards " : "corpus ", path, ", tokenizer ", tok->id(), ": ",
             train_toks.size(), " train / ", val_toks.size(), " validation",
             o.val_data.empty() ? "" : " (--val-data " + o.val_data + ")", " / ", test_toks.size(),
             " test tokens"));
    const std::unique_ptr<LanguageModel> model = make_model(tok->vocab_size(), false);
    embed_tokenizer(*tok, t.metadata);  // the model file needs no vocabulary folder to run
    t.metadata["data"] = path;          // for the record; resume compares the content (below)
    if (!o.val_data.empty()) t.metadata["val-data"] = o.val_data;
    t.run_settings["data"] = data_fingerprint(train_toks);
    t.run_settings["tokenizer"] = tok->id();
    t.run_settings["batch-size"] = std::to_string(o.batch_size);
    t.run_settings["seq-len"] = std::to_string(o.seq_len);
    const std::vector<int32_t> bytes = token_byte_lengths(*tok);
    const int B = o.batch_size, L = o.seq_len, accum = t.grad_accum;
    const uint64_t seed = o.seed;
    const int64_t eval_tokens = o.eval_tokens;
    // Micro-batch j of every step draws from part j of `accum` token ranges, so this rank, which
    // computes micro-batches [rank * k, (rank + 1) * k), reads only their ranges: the id
    // checksums of just those shard files are checked.
    const int k = accum / comm.size();
    const int64_t n_train = static_cast<int64_t>(train_toks.size());
    train_toks.verify(static_cast<size_t>(lm_part_range(n_train, comm.rank() * k, accum, L).first),
                      static_cast<size_t>(lm_part_range(n_train, (comm.rank() + 1) * k - 1, accum, L).second));
    const TrainResult r = run_loop(
        *model,
        [&](int64_t step, int micro, Batch& b) {
          lm_random_batch(train_toks, seed, step * accum + micro, B, L, b, micro, accum);
        },
        [&](LanguageModel& m) { return evaluate_lm(m, val_toks, L, B, &bytes, eval_tokens); }, folder);
    EvalResult test;  // rank 0's to report
    if (comm.rank() == 0) test = evaluate_lm(*model, test_toks, L, B, &bytes, 0, cb.on_test_progress);
    TrainingResult out = result(r, *model);
    out.test = test.metrics;
    return out;
  }
};

TrainingResult train_on(Communicator& comm, const TrainingOptions& options,
                        const TrainingCallbacks& callbacks) {
  Run run{options, callbacks, trainer_options(options), comm};
  if (run.t.grad_accum == 0) run.t.grad_accum = comm.size();  // one micro-batch per rank
  validate(options, run.t);
  if (callbacks.on_step) {
    const int64_t total = options.steps;
    run.t.on_step = [&callbacks, total](int64_t step, double loss, double tokens_per_s) {
      return callbacks.on_step(TrainingProgress{step, total, loss, tokens_per_s});
    };
  }
  int threads = options.threads;
  if (threads == 0 && comm.local_size() > 1)  // all cores, shared among this machine's ranks
    threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / comm.local_size());
  set_num_threads(threads);
  // Past a file-size limit (ulimit -f) a write then fails with EFBIG, which a save reports
  // and survives, instead of the signal killing the run with its state.
  ::signal(SIGXFSZ, SIG_IGN);
  // The run folder first: a locked folder or a run that is there already is refused before
  // any data is read.
  std::unique_ptr<RunFolder> folder;
  if (!options.out_dir.empty() && comm.rank() == 0) folder = std::make_unique<RunFolder>(run.t);
  const std::string prefix = "synthetic:";
  if (options.data.rfind(prefix, 0) == 0) return run.synthetic(options.data.substr(prefix.size()), folder.get());
  return run.text(folder.get());
}

}  // namespace

TrainingResult train(const TrainingOptions& options, const TrainingCallbacks& callbacks) {
  Communicator& comm = world_communicator();
  try {
    return train_on(comm, options, callbacks);
  } catch (const std::exception& e) {
    // The other ranks would wait for this one for ever: end them all, with the reason.
    if (comm.size() > 1) comm.abort_all(e.what());
    throw;
  }
}

}  // namespace hippo
