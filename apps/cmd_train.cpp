// hippo train: train a model on a synthetic task (or, with the tokenizer, on text).
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "apps/commands.h"
#include "core/error.h"
#include "core/threads.h"
#include "data/synthetic.h"
#include "data/corpus.h"
#include "data/lm_batches.h"
#include "data/synthetic_batches.h"
#include "models/lm.h"
#include "train/lm_eval.h"
#include "train/synthetic_eval.h"
#include "train/trainer.h"

namespace hippo::cli {

namespace {

struct TrainCli {
  std::string config;  // model config JSON; empty: built-in small hybrid
  std::string data = "brown";
  std::string tokenizer = "byte";
  std::string cache_dir = "data/cache";
  int threads = 0;
  uint64_t seed = 0;
  int batch_size = 16;
  int seq_len = 256;
  int64_t eval_tokens = 65536;  // validation tokens per periodic evaluation
  TrainOptions t;
  float dropout = -1;
};

// The built-in default: a small hybrid H3-attention model, attention at layer 1 of 4
// ("one early", as in the paper's hybrids).
ModelConfig default_config(int vocab, bool synthetic) {
  nlohmann::json j = {{"vocab_size", vocab}, {"d_model", synthetic ? 64 : 128},
                      {"n_layer", synthetic ? 2 : 4}, {"d_state", 64}, {"attn_heads", synthetic ? 4 : 8}};
  j["layers"] = synthetic ? nlohmann::json{"h3", "attention"}
                          : nlohmann::json{"h3", "attention", "h3", "h3"};
  return ModelConfig::from_json(j, "built-in default config");
}

std::unique_ptr<LanguageModel> make_model(const TrainCli& o, int vocab, bool synthetic) {
  ModelConfig cfg = o.config.empty() ? default_config(vocab, synthetic) : ModelConfig::load(o.config);
  HIPPO_CHECK(cfg.vocab_size >= vocab, o.config, ": vocab_size ", cfg.vocab_size,
              " is smaller than the data's vocabulary ", vocab);
  if (o.dropout >= 0) cfg.dropout = o.dropout;
  auto model = std::make_unique<LanguageModel>(cfg);  // not movable: params point into it
  model->init(o.seed);
  std::fprintf(stderr, "model: %d layers (%s), d=%d, %lld parameters\n", cfg.n_layer,
               layers_summary(cfg).c_str(), cfg.d_model, static_cast<long long>(model->num_params()));
  return model;
}

int train_synthetic(TrainCli& o, const std::string& task) {
  SynthOptions so;
  so.task = parse_synth_task(task);
  so.seed = o.seed;
  so.fill_defaults();
  SynthSplits data = make_synthetic(so);
  const std::unique_ptr<LanguageModel> owned = make_model(o, so.vocab, true);
  LanguageModel& model = *owned;
  std::fprintf(stderr, "task %s: %d train / %d test sequences\n", synth_task_name(so.task).c_str(),
               data.train.n, data.test.n);
  const int B = o.batch_size, accum = o.t.grad_accum;
  TrainResult r = train(
      model, o.t,
      [&](int64_t step, int micro, Batch& b) { synthetic_batch(data.train, o.seed, step * accum + micro, B, b); },
      [&](LanguageModel& m) { return evaluate_synthetic(m, data.test); });
  std::printf("final: step %lld  train loss %.4f  test loss %.4f  test acc %.4f  %.0f tokens/s\n",
              static_cast<long long>(r.steps_done), r.last_loss, r.last_eval.metrics["loss"],
              r.last_eval.metrics["acc"], r.tokens_per_s);
  return 0;
}

int train_text(TrainCli& o) {
  const std::string path = resolve_corpus_path(o.data);
  auto tok = load_tokenizer(o.tokenizer);
  auto split = [&](Split s) {
    std::string why;
    TokenCache c = split_tokens(path, s, *tok, default_cache_path(o.cache_dir, path, s, *tok), &why);
    if (!why.empty()) std::fprintf(stderr, "tokenized %s split (%s): %zu tokens\n", split_name(s), why.c_str(), c.size());
    return c;
  };
  TokenCache train_toks = split(Split::Train), val_toks = split(Split::Validation),
             test_toks = split(Split::Test);
  std::fprintf(stderr, "corpus %s, tokenizer %s: %zu train / %zu validation / %zu test tokens\n",
               path.c_str(), tok->id().c_str(), train_toks.size(), val_toks.size(), test_toks.size());
  const std::unique_ptr<LanguageModel> owned = make_model(o, tok->vocab_size(), false);
  LanguageModel& model = *owned;
  o.t.metadata["tokenizer"] = o.tokenizer;
  const std::vector<int32_t> bytes = token_byte_lengths(*tok);
  const int B = o.batch_size, L = o.seq_len, accum = o.t.grad_accum;
  TrainResult r = train(
      model, o.t,
      [&](int64_t step, int micro, Batch& b) { lm_random_batch(train_toks, o.seed, step * accum + micro, B, L, b); },
      [&](LanguageModel& m) { return evaluate_lm(m, val_toks, L, B, &bytes, o.eval_tokens); });
  const bool tty = isatty(STDERR_FILENO);
  EvalResult test = evaluate_lm(model, test_toks, L, B, &bytes, 0, [tty](int64_t done, int64_t total) {
    if (tty || done == total)
      std::fprintf(stderr, "%stest evaluation: %lld/%lld windows%s", tty ? "\r" : "",
                   static_cast<long long>(done), static_cast<long long>(total), done == total ? "\n" : "");
  });
  std::printf("final: step %lld  train loss %.4f  %.0f tokens/s\n", static_cast<long long>(r.steps_done),
              r.last_loss, r.tokens_per_s);
  std::printf("test: %.0f tokens  loss %.4f  perplexity %.3f  bits/byte %.4f\n", test.metrics["tokens"],
              test.metrics["loss"], test.metrics["ppl"], test.metrics["bpb"]);
  if (!o.t.out_dir.empty()) std::printf("weights: %s/model.safetensors\n", o.t.out_dir.c_str());
  return 0;
}

int run_train(TrainCli& o) {
  set_num_threads(o.threads);
  o.t.seed = o.seed;
  const std::string prefix = "synthetic:";
  if (o.data.rfind(prefix, 0) == 0) return train_synthetic(o, o.data.substr(prefix.size()));
  return train_text(o);
}

}  // namespace

void add_train(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<TrainCli>();
  o->t.steps = 600;
  o->t.adam.lr = 2e-3f;
  o->t.adam.weight_decay = 0.1f;
  o->t.warmup_steps = 50;
  o->t.eval_every = 200;
  auto* c = app.add_subcommand("train", "Train a model");
  c->add_option("-c,--config", o->config, "Model config JSON (default: built-in tiny hybrid)");
  c->add_option("-d,--data", o->data,
                 "brown (data/brown) | a text file or folder of .txt files | "
                 "synthetic:induction_head | synthetic:associative_recall")
      ->capture_default_str();
  c->add_option("--tokenizer", o->tokenizer, "byte | gpt2:DIR (text data)")->capture_default_str();
  c->add_option("-L,--seq-len", o->seq_len, "Tokens per training window (text data)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--cache-dir", o->cache_dir, "Where tokenized corpora are cached")->capture_default_str();
  c->add_option("--eval-tokens", o->eval_tokens, "Validation tokens per evaluation")->capture_default_str();
  c->add_option("-t,--threads", o->threads, "Threads (0: all cores)")->capture_default_str();
  c->add_option("-s,--seed", o->seed, "Random seed")->capture_default_str();
  c->add_option("-b,--batch-size", o->batch_size, "Sequences per micro-batch")->capture_default_str()
      ->check(CLI::PositiveNumber);
  c->add_option("--grad-accum", o->t.grad_accum, "Micro-batches per step")->capture_default_str()
      ->check(CLI::PositiveNumber);
  c->add_option("-n,--steps", o->t.steps, "Optimizer steps")->capture_default_str()
      ->check(CLI::PositiveNumber);
  c->add_option("--lr", o->t.adam.lr, "Peak learning rate")->capture_default_str();
  c->add_option("--wd", o->t.adam.weight_decay, "AdamW weight decay")->capture_default_str();
  c->add_option("--warmup", o->t.warmup_steps, "Linear warmup steps")->capture_default_str();
  c->add_option("--min-lr-ratio", o->t.min_lr_ratio, "Cosine floor / peak lr")->capture_default_str();
  c->add_option("--clip", o->t.clip, "Global gradient-norm clip (0: off)")->capture_default_str();
  c->add_option("--dropout", o->dropout, "Override the config's dropout");
  c->add_option("--eval-every", o->t.eval_every, "Evaluate every N steps")->capture_default_str();
  c->add_option("--save-every", o->t.save_every, "Checkpoint every N steps (0: at the end)")
      ->capture_default_str();
  c->add_option("--log-every", o->t.log_every, "Progress/log every N steps")->capture_default_str();
  c->add_option("-o,--out", o->t.out_dir, "Run folder: checkpoint, weights, log.jsonl");
  c->add_flag("--resume", o->t.resume, "Continue from OUT/checkpoint.safetensors");
  c->add_flag("-q,--quiet", o->t.quiet, "No progress line");
  c->callback([&run, o] { run = [o] { return run_train(*o); }; });
}

}  // namespace hippo::cli
