// hippo synth: the paper's Table 1 study (hippo::run_synth, include/hippo/train.hpp).
#include <memory>
#include <string>

#include "apps/commands.h"
#include "apps/int_option.h"
#include "hippo/train.hpp"

namespace hippo::cli {

namespace {

struct SynthCli {
  SynthStudyOptions s;
  std::string steps_text = "3000", attn_steps_text, eval_every_text = "100", curriculum_steps_text = "0";  // parsed strictly (apps/int_option.h)
  bool steps_given = false, lr_given = false, attn_lr_given = false;
  float attn_lr = 0;
};

int run_synth_cli(SynthCli& o) {
  o.s.steps = parse_int_option(o.steps_text, "--steps", 1, kMaxCount);
  // Attention's own budget is a default of the study; a user who sets -n alone means every model.
  if (!o.attn_steps_text.empty())
    o.s.attn_steps = parse_int_option(o.attn_steps_text, "--attn-steps", 0, kMaxCount);
  else if (o.steps_given)
    o.s.attn_steps = 0;
  if (o.attn_lr_given)
    o.s.attn_lr = o.attn_lr;
  else if (o.lr_given)
    o.s.attn_lr = 0;
  o.s.eval_every = parse_int_option(o.eval_every_text, "--eval-every", 0, kMaxCount);
  o.s.curriculum_steps = parse_int_option(o.curriculum_steps_text, "--curriculum-steps", 0, kMaxCount);
  o.s.source_dir = HIPPO_SOURCE_DIR;
  run_synth(o.s);
  return 0;
}

}  // namespace

void add_synth(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<SynthCli>();
  auto* c = app.add_subcommand("synth", "Paper Table 1: synthetic tasks for every model and seed");
  c->add_option("--tasks", o->s.tasks, "Tasks: induction_head, associative_recall, mqar")
      ->capture_default_str();
  c->add_option("--vocab", o->s.vocab, "Vocabulary of every task (0: each task's default: 20, 10, 64)")
      ->capture_default_str();
  c->add_option("--seq-len", o->s.seq_len, "Sequence length of every task (0: each task's default: 32, 20, 64)")
      ->capture_default_str();
  c->add_option("--pairs", o->s.pairs,
                "Key-value pairs of associative_recall and mqar (0: as many as fit / 8)")
      ->capture_default_str();
  c->add_option("--models", o->s.models, "Mixers to compare")->capture_default_str();
  c->add_option("--test-lengths", o->s.test_lengths,
                "After training, also test every run at these sequence lengths (length generalisation)")
      ->delimiter(',');
  c->add_option("--curriculum", o->s.curriculum,
                "Lengths to train on in turn after a run solves its task (>= 99%; stops at the first unsolved)")
      ->delimiter(',');
  c->add_option("--curriculum-steps", o->curriculum_steps_text,
                "Step budget of each curriculum stage (0: the tokens of -n steps at the first length)")
      ->type_name("INT");
  c->add_option("--seeds", o->s.seeds, "Seeds per model")->capture_default_str();
  c->add_option("--d-model", o->s.d_model, "Model width")->capture_default_str();
  c->add_option("--layers", o->s.n_layer, "Layers")->capture_default_str();
  c->add_option("-b,--batch-size", o->s.batch_size, "Batch size")->capture_default_str();
  c->add_option("-n,--steps", o->steps_text, "Step budget per run")->type_name("INT")->capture_default_str();
  c->add_option("--attn-steps", o->attn_steps_text,
                "Step budget of attention runs (default: 10000, or -n when -n is given; 0: -n)")
      ->type_name("INT");
  c->add_option("--eval-every", o->eval_every_text, "Evaluate every N steps")
      ->type_name("INT")->capture_default_str();
  c->add_option("--lr", o->s.lr, "Peak learning rate")->capture_default_str();
  c->add_option("--attn-lr", o->attn_lr,
                "Peak learning rate of attention runs (default: 0.001, or --lr when --lr is given; 0: --lr)");
  c->add_option("--init-std", o->s.init_std, "Init std of linears and embeddings (0: 1/sqrt(d))")
      ->capture_default_str();
  c->add_option("--dropout", o->s.dropout, "Embedding and residual dropout while training")
      ->capture_default_str();
  c->add_option("--attn-positions", o->s.attn_positions, "Attention's positions: learned or rotary")
      ->capture_default_str();
  c->add_option("--n-train", o->s.n_train, "Training sequences")->capture_default_str();
  c->add_option("--n-test", o->s.n_test, "Test sequences")->capture_default_str();
  c->add_option("-t,--threads", o->s.threads, "Runs in parallel (0: all cores)")->capture_default_str();
  c->add_option("-o,--out", o->s.out, "Output folder")->capture_default_str();
  c->add_flag("--force", o->s.force, "Replace an earlier study's results in the output folder");
  c->callback([&run, o, c] {
    o->steps_given = c->count("--steps") > 0;
    o->lr_given = c->count("--lr") > 0;
    o->attn_lr_given = c->count("--attn-lr") > 0;
    run = [o] { return run_synth_cli(*o); };
  });
}

}  // namespace hippo::cli
