// hippo train: train a model on a synthetic task (or, with the tokenizer, on text).
#include <cstdio>
#include <memory>

#include "apps/commands.h"
#include "core/error.h"
#include "core/threads.h"
#include "data/synthetic.h"
#include "data/synthetic_batches.h"
#include "models/lm.h"
#include "train/synthetic_eval.h"
#include "train/trainer.h"

namespace hippo::cli {

namespace {

struct TrainCli {
  std::string config;                      // model config JSON; empty: built-in tiny hybrid
  std::string data = "synthetic:associative_recall";
  int threads = 0;
  uint64_t seed = 0;
  int batch_size = 32;
  TrainOptions t;
  float dropout = -1;
};

// The built-in default: a tiny hybrid H3-attention model.
ModelConfig default_config(int vocab) {
  return ModelConfig::from_json({{"vocab_size", vocab},
                                 {"d_model", 64},
                                 {"n_layer", 2},
                                 {"d_state", 64},
                                 {"attn_heads", 4},
                                 {"layers", {"h3", "attention"}}},
                                "built-in default config");
}

int run_train(TrainCli& o) {
  set_num_threads(o.threads);
  const std::string prefix = "synthetic:";
  HIPPO_CHECK(o.data.rfind(prefix, 0) == 0, "--data: unsupported data source '", o.data,
              "' (expected synthetic:induction_head or synthetic:associative_recall)");
  SynthOptions so;
  so.task = parse_synth_task(o.data.substr(prefix.size()));
  so.seed = o.seed;
  so.fill_defaults();
  SynthSplits data = make_synthetic(so);
  ModelConfig cfg = o.config.empty() ? default_config(so.vocab) : ModelConfig::load(o.config);
  HIPPO_CHECK(cfg.vocab_size >= so.vocab, o.config, ": vocab_size ", cfg.vocab_size,
              " is smaller than the task's vocabulary ", so.vocab);
  if (o.dropout >= 0) cfg.dropout = o.dropout;
  LanguageModel model(cfg);
  model.init(o.seed);
  std::fprintf(stderr, "model: %d layers, d=%d, %lld parameters; task %s (%d train / %d test)\n",
               cfg.n_layer, cfg.d_model, static_cast<long long>(model.num_params()),
               synth_task_name(so.task).c_str(), data.train.n, data.test.n);
  o.t.seed = o.seed;
  const int B = o.batch_size;
  const int accum = o.t.grad_accum;
  auto batches = [&](int64_t step, int micro, Batch& b) {
    synthetic_batch(data.train, o.seed, step * accum + micro, B, b);
  };
  auto eval = [&](LanguageModel& m) { return evaluate_synthetic(m, data.test); };
  TrainResult r = train(model, o.t, batches, eval);
  std::printf("final: step %lld  train loss %.4f  test loss %.4f  test acc %.4f  %.0f tokens/s\n",
              static_cast<long long>(r.steps_done), r.last_loss, r.last_eval.metrics["loss"],
              r.last_eval.metrics["acc"], r.tokens_per_s);
  return 0;
}

}  // namespace

void add_train(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<TrainCli>();
  o->t.steps = 200;
  o->t.adam.lr = 5e-4f;
  o->t.adam.weight_decay = 0.1f;
  o->t.warmup_steps = 10;
  o->t.eval_every = 50;
  auto* c = app.add_subcommand("train", "Train a model");
  c->add_option("-c,--config", o->config, "Model config JSON (default: built-in tiny hybrid)");
  c->add_option("-d,--data", o->data, "synthetic:induction_head | synthetic:associative_recall")
      ->capture_default_str();
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
