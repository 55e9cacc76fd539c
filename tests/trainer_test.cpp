// Training loop: bit-exact determinism, exact resume, NaN handling, checkpoint round trip.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/threads.h"
#include "data/synthetic.h"
#include "data/synthetic_batches.h"
#include "models/load.h"
#include "train/checkpoint.h"
#include "train/synthetic_eval.h"
#include "train/trainer.h"

using namespace hippo;
namespace fs = std::filesystem;

namespace {

ModelConfig tiny_config() {
  return ModelConfig::from_json({{"vocab_size", 10}, {"d_model", 16}, {"n_layer", 2}, {"d_state", 8},
                                 {"attn_heads", 2}, {"dropout", 0.1}, {"layers", {"h3", "attention"}}},
                                "test");
}

struct Fixture {
  SynthSplits data;
  Fixture() {
    SynthOptions o;
    o.task = SynthTask::AssociativeRecall;
    o.n_train = 64;
    o.n_test = 16;
    data = make_synthetic(o);
  }
  TrainResult run(LanguageModel& m, TrainOptions t) {
    t.quiet = true;
    t.adam.lr = 3e-3f;
    return train(
        m, t, [&](int64_t step, int micro, Batch& b) { synthetic_batch(data.train, 5, step * t.grad_accum + micro, 8, b); },
        [&](LanguageModel& mm) { return evaluate_synthetic(mm, data.test); });
  }
};

std::vector<float> weights(const LanguageModel& m) {
  std::vector<float> w;
  for (auto& p : m.params()) w.insert(w.end(), p.param->value.data(), p.param->value.data() + p.param->value.numel());
  return w;
}

fs::path temp_dir(const char* name) {
  fs::path d = fs::temp_directory_path() / (std::string(name) + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST(Trainer, SameSeedSameRunBitForBit) {
  set_num_threads(1);
  Fixture f;
  TrainOptions t;
  t.steps = 12;
  t.grad_accum = 2;
  t.warmup_steps = 3;
  LanguageModel a(tiny_config()), b(tiny_config());
  a.init(1);
  b.init(1);
  TrainResult ra = f.run(a, t), rb = f.run(b, t);
  EXPECT_EQ(ra.last_loss, rb.last_loss);
  EXPECT_EQ(weights(a), weights(b));
}

TEST(Trainer, ResumeGivesIdenticalWeights) {
  set_num_threads(1);
  Fixture f;
  fs::path dir = temp_dir("hippo_resume_test");
  TrainOptions t;
  t.steps = 10;
  t.warmup_steps = 2;
  LanguageModel full(tiny_config());
  full.init(3);
  f.run(full, t);

  // The same 10-step run, interrupted after step 5 (the batch function throws, as a crash
  // would), then resumed from the checkpoint saved at step 5.
  LanguageModel half(tiny_config());
  half.init(3);
  TrainOptions first = t;
  first.out_dir = dir.string();
  first.save_every = 5;
  first.quiet = true;
  first.adam.lr = 3e-3f;
  EXPECT_THROW(train(
                   half, first,
                   [&](int64_t step, int micro, Batch& b) {
                     if (step == 5) throw Error("interrupted");
                     synthetic_batch(f.data.train, 5, step + micro, 8, b);
                   },
                   nullptr),
               Error);
  ASSERT_TRUE(fs::exists(dir / "checkpoint.safetensors"));
  LanguageModel resumed(tiny_config());
  resumed.init(99);  // different init: everything must come from the checkpoint
  TrainOptions second = first;
  second.resume = true;
  f.run(resumed, second);
  EXPECT_EQ(weights(resumed), weights(full)) << "N steps and N/2 + resume + N/2 must agree exactly";
  fs::remove_all(dir);
}

TEST(Trainer, NonFiniteLossStopsAndKeepsCheckpoint) {
  set_num_threads(1);
  Fixture f;
  fs::path dir = temp_dir("hippo_nan_test");
  LanguageModel m(tiny_config());
  m.init(0);
  TrainOptions t;
  t.steps = 4;
  t.out_dir = dir.string();
  f.run(m, t);
  auto ckpt = dir / "checkpoint.safetensors";
  auto before = fs::file_size(ckpt);
  auto stamp = fs::last_write_time(ckpt);
  // Continue the run; at step 5 one weight is poisoned, so that step's loss is NaN.
  TrainOptions t2 = t;
  t2.steps = 8;
  t2.resume = true;
  t2.quiet = true;
  t2.adam.lr = 3e-3f;
  try {
    train(
        m, t2,
        [&](int64_t step, int micro, Batch& b) {
          if (step == 5) m.params()[3].param->value[0] = NAN;
          synthetic_batch(f.data.train, 5, step + micro, 8, b);
        },
        nullptr);
    FAIL() << "training on a NaN weight must stop";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("step 5"), std::string::npos) << msg;
    EXPECT_NE(msg.find("loss is nan"), std::string::npos) << msg;
  }
  EXPECT_EQ(fs::file_size(ckpt), before);
  EXPECT_EQ(fs::last_write_time(ckpt), stamp);
  fs::remove_all(dir);
}

TEST(Trainer, CheckpointRoundTripAndMismatchErrors) {
  fs::path dir = temp_dir("hippo_ckpt_test");
  LanguageModel a(tiny_config());
  a.init(7);
  save_weights((dir / "w.safetensors").string(), a);
  ModelConfig c = read_model_config((dir / "w.safetensors").string());
  EXPECT_EQ(c.mixers, tiny_config().mixers);
  LanguageModel b(c);
  load_checkpoint((dir / "w.safetensors").string(), b, nullptr);
  EXPECT_EQ(weights(a), weights(b));
  ModelConfig other = tiny_config();
  other.d_model = 32;
  LanguageModel wrong(other);
  try {
    load_checkpoint((dir / "w.safetensors").string(), wrong, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shape"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(Trainer, LearnsAssociativeRecallLoss) {
  set_num_threads(1);
  Fixture f;
  LanguageModel m(tiny_config());
  m.init(0);
  TrainOptions t;
  t.steps = 60;
  auto first = evaluate_synthetic(m, f.data.test).metrics["loss"];
  f.run(m, t);
  auto last = evaluate_synthetic(m, f.data.test).metrics["loss"];
  EXPECT_LT(last, first - 0.3) << "loss must fall: " << first << " -> " << last;
}
