// `hippo train --recompute auto|on|off` as a training option (TrainOptions::recompute): it
// reaches LanguageModel's choice of step (prefers_recompute), every micro-batch follows it, the
// environment variable counts only under Auto, and the model's own mode is restored after.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/threads.h"
#include "data/synthetic.h"
#include "data/synthetic_batches.h"
#include "train/trainer.h"

using namespace hippo;

namespace {

ModelConfig small_config() {
  return ModelConfig::from_json({{"vocab_size", 10}, {"d_model", 16}, {"n_layer", 2}, {"d_state", 8},
                                 {"attn_heads", 2}, {"layers", {"h3", "attention"}}},
                                "test");
}

TrainResult run(LanguageModel& m, RecomputeMode mode, int grad_accum = 2) {
  SynthOptions so;
  so.task = SynthTask::AssociativeRecall;
  so.n_train = 32;
  so.n_test = 8;
  const SynthSplits data = make_synthetic(so);
  TrainOptions t;
  t.steps = 3;
  t.grad_accum = grad_accum;
  t.quiet = true;
  t.recompute = mode;
  return train(
      m, t,
      [&](int64_t step, int micro, Batch& b) {
        synthetic_batch(data.train, 5, step * grad_accum + micro, 4, b);
      },
      nullptr);
}

}  // namespace

TEST(RecomputeOption, ForcesTheStepEitherWay) {
  set_num_threads(1);
  LanguageModel on(small_config()), off(small_config());
  on.init(3);
  off.init(3);
  const TrainResult r_on = run(on, RecomputeMode::On), r_off = run(off, RecomputeMode::Off);
  EXPECT_EQ(r_on.recompute_micro_batches, 6);  // 3 steps of 2 micro-batches
  EXPECT_EQ(r_off.recompute_micro_batches, 0);
  // The two steps compute the same gradients up to rounding, so the same run.
  EXPECT_NEAR(r_on.last_loss, r_off.last_loss, 1e-4);
  // The model's own mode is back after the run.
  EXPECT_EQ(on.recompute(), RecomputeMode::Auto);
  EXPECT_EQ(off.recompute(), RecomputeMode::Auto);
}

TEST(RecomputeOption, ReachesTheModelsChoice) {
  LanguageModel m(small_config());
  m.set_recompute(RecomputeMode::On);
  EXPECT_TRUE(m.prefers_recompute(1, 4));
  m.set_recompute(RecomputeMode::Off);
  EXPECT_FALSE(m.prefers_recompute(1024, 1 << 20));
  m.set_recompute(RecomputeMode::Auto);
  if (std::getenv("HIPPO_TRAIN_RECOMPUTE")) GTEST_SKIP() << "Auto: forced by the environment";
  EXPECT_FALSE(m.prefers_recompute(1, 4));  // small: the plain step
}

TEST(RecomputeOption, AutoFollowsTheSize) {
  if (std::getenv("HIPPO_TRAIN_RECOMPUTE")) GTEST_SKIP() << "forced by the environment";
  set_num_threads(1);
  LanguageModel m(small_config());
  m.init(3);
  EXPECT_EQ(run(m, RecomputeMode::Auto).recompute_micro_batches, 0);
}
