// hippo train: train a model on a synthetic task (or, with the tokenizer, on text). The work is
// hippo::train (include/hippo/train.hpp); this is its options and its printing.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "apps/commands.h"
#include "apps/int_option.h"
#include "hippo/train.hpp"

namespace hippo::cli {

namespace {

struct TrainCli {
  TrainingOptions t;
  // 64-bit options as given, parsed strictly by parse_numbers (see apps/int_option.h).
  std::string seed_text = "0", steps_text = "600", warmup_text = "50", eval_every_text = "200",
              save_every_text = "0", log_every_text = "10", eval_tokens_text = "65536";
  std::string grad_accum_text;  // empty: one micro-batch per rank (TrainingOptions::grad_accum 0)
  float dropout = 0;
  bool dropout_given = false;
  bool seq_len_given = false;
};

void parse_numbers(TrainCli& o) {
  o.t.seed = parse_u64_option(o.seed_text, "--seed");
  o.t.steps = parse_int_option(o.steps_text, "--steps", 1, kMaxCount);
  o.t.warmup = parse_int_option(o.warmup_text, "--warmup", 0, kMaxCount);
  o.t.eval_every = parse_int_option(o.eval_every_text, "--eval-every", 0, kMaxCount);
  o.t.save_every = parse_int_option(o.save_every_text, "--save-every", 0, kMaxCount);
  o.t.log_every = parse_int_option(o.log_every_text, "--log-every", 1, kMaxCount);
  o.t.eval_tokens = parse_int_option(o.eval_tokens_text, "--eval-tokens", 0, kMaxCount);
  if (o.dropout_given) o.t.dropout = o.dropout;
  if (!o.grad_accum_text.empty())
    o.t.grad_accum = static_cast<int>(parse_int_option(o.grad_accum_text, "--grad-accum", 1, 65536));
  // -L sizes a synthetic task too when given; its default (256) is the text window's.
  if (o.seq_len_given && o.t.data.rfind("synthetic:", 0) == 0) o.t.synth_seq_len = o.t.seq_len;
}

int run_train(TrainCli& o) {
  parse_numbers(o);
  TrainingCallbacks cb;
  cb.on_info = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  const bool tty = isatty(STDERR_FILENO);
  cb.on_test_progress = [tty](int64_t done, int64_t total) {
    if (tty || done == total)
      std::fprintf(stderr, "%stest evaluation: %lld/%lld windows%s", tty ? "\r" : "",
                   static_cast<long long>(done), static_cast<long long>(total), done == total ? "\n" : "");
  };
  const TrainingResult r = train(o.t, cb);
  if (r.rank != 0) return 0;  // under mpirun rank 0 reports
  if (r.ranks > 1) std::printf("ranks: %d (data parallel)\n", r.ranks);
  if (r.synthetic) {
    std::printf("final: step %lld  train loss %.4f  test loss %.4f  test acc %.4f  %.0f tokens/s\n",
                static_cast<long long>(r.steps_done), r.last_loss, r.last_eval.at("loss"),
                r.last_eval.at("acc"), r.tokens_per_s);
    return 0;
  }
  std::printf("final: step %lld  train loss %.4f  %.0f tokens/s\n", static_cast<long long>(r.steps_done),
              r.last_loss, r.tokens_per_s);
  std::printf("test: %.0f tokens  loss %.4f  perplexity %.3f  bits/byte %.4f\n", r.test.at("tokens"),
              r.test.at("loss"), r.test.at("ppl"), r.test.at("bpb"));
  if (!r.weights.empty()) std::printf("weights: %s\n", r.weights.c_str());
  return 0;
}

}  // namespace

void add_train(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<TrainCli>();
  auto* c = app.add_subcommand("train", "Train a model");
  c->add_option("-c,--config", o->t.config, "Model config JSON (default: built-in tiny hybrid)");
  c->add_option("-d,--data", o->t.data,
                 "brown (data/brown) | a text file or folder of .txt files | a .jsonl file "
                 "({\"text\": ...} per line) | a folder of token shards (hippo tokenize --shards) | "
                 "synthetic:induction_head | synthetic:associative_recall | synthetic:mqar")
      ->capture_default_str();
  c->add_option("--vocab", o->t.synth_vocab, "Synthetic task: vocabulary (0: the task's default)")
      ->capture_default_str();
  c->add_option("--pairs", o->t.synth_pairs,
                "Synthetic task: key-value pairs of associative_recall / mqar (0: the task's default)")
      ->capture_default_str();
  c->add_option("--val-data", o->t.val_data,
                 "An explicit validation set: text, .jsonl, a shard folder or .tok file (default: "
                 "the data's own validation split)");
  c->add_option("--dist-timeout", o->t.dist_timeout,
                 "Under mpirun: seconds a rank waits for the others before ending the job (a rank "
                 "died or hangs; 0: for ever)")->capture_default_str();
  c->add_option("--allreduce-bucket-mb", o->t.allreduce_bucket_mb,
                 "Under mpirun: all-reduce the gradients in buckets of this many MB, started "
                 "during the backward (0: one all-reduce after it; same weights either way)")
      ->capture_default_str();
  c->add_option("--tokenizer", o->t.tokenizer, "byte | gpt2:DIR (text data)")->capture_default_str();
  c->add_option("-L,--seq-len", o->t.seq_len,
                "Tokens per training window (text data); sequence length (synthetic data; default: "
                "the task's)")
      ->capture_default_str()
      ->each([o](const std::string&) { o->seq_len_given = true; });
  c->add_option("--cache-dir", o->t.cache_dir, "Where tokenized corpora are cached")->capture_default_str();
  c->add_option("--eval-tokens", o->eval_tokens_text, "Validation tokens per evaluation (0: all)")
      ->type_name("INT")->capture_default_str();
  c->add_option("-t,--threads", o->t.threads, "Threads (0: all cores)")->capture_default_str();
  c->add_option("-s,--seed", o->seed_text, "Random seed")->type_name("INT")->capture_default_str();
  c->add_option("-b,--batch-size", o->t.batch_size, "Sequences per micro-batch")->capture_default_str();
  c->add_option("--grad-accum", o->grad_accum_text,
                 "Micro-batches per step over all ranks (under mpirun -np N a multiple of N; "
                 "default: one per rank)")->type_name("INT");
  c->add_option("-n,--steps", o->steps_text, "Optimizer steps (with --resume: the new total)")
      ->type_name("INT")->capture_default_str();
  c->add_option("--lr", o->t.lr, "Peak learning rate")->capture_default_str();
  c->add_option("--wd", o->t.weight_decay, "AdamW weight decay")->capture_default_str();
  c->add_option("--warmup", o->warmup_text, "Linear warmup steps")->type_name("INT")->capture_default_str();
  c->add_option("--min-lr-ratio", o->t.min_lr_ratio, "Cosine floor / peak lr")->capture_default_str();
  c->add_option("--clip", o->t.clip, "Global gradient-norm clip (0: off)")->capture_default_str();
  c->add_option("--dropout", o->dropout, "Override the config's dropout")
      ->each([o](const std::string&) { o->dropout_given = true; });
  c->add_option("--eval-every", o->eval_every_text, "Evaluate every N steps")
      ->type_name("INT")->capture_default_str();
  c->add_option("--save-every", o->save_every_text, "Checkpoint every N steps (0: at the end)")
      ->type_name("INT")->capture_default_str();
  c->add_option("--log-every", o->log_every_text, "Progress/log every N steps")
      ->type_name("INT")->capture_default_str();
  c->add_option("-o,--out", o->t.out_dir, "Run folder: checkpoint, weights, log.jsonl");
  c->add_flag("--resume", o->t.resume,
              "Continue from OUT/checkpoint.safetensors (same settings; --steps, --threads and the "
              "eval/save/log frequencies may change)");
  c->add_flag("--force", o->t.force,
              "Discard a run already in OUT (without it, such a folder is refused)");
  c->add_flag("-q,--quiet", o->t.quiet, "No progress line");
  // The long-sequence step (LanguageModel::train_step_recompute): chosen by the activations'
  // size (auto; HIPPO_TRAIN_RECOMPUTE=0|1 when set), or forced (TrainingOptions::recompute).
  c->add_option("--recompute", o->t.recompute,
                "Recompute each block in the backward (long sequences): auto (by memory, or as "
                "HIPPO_TRAIN_RECOMPUTE=0|1 says) | on | off")
      ->check(CLI::IsMember({"auto", "on", "off"}))->capture_default_str();
  c->callback([&run, o] { run = [o] { return run_train(*o); }; });
}

}  // namespace hippo::cli
