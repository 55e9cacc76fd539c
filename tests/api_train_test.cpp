// hippo::train and hippo::evaluate (include/hippo/train.hpp), the entry points `hippo train`
// and `hippo eval` now run on: checked against the trainer driven by hand (the setup the CLI
// had before it moved into the library), the per-step callback (progress and stopping), the
// embedded tokenizer of the model file, and option errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/synthetic.h"
#include "data/synthetic_batches.h"
#include "hippo/hippo.hpp"
#include "hippo/train.hpp"
#include "models/load.h"
#include "test_util.h"
#include "core/threads.h"
#include "train/checkpoint.h"
#include "train/synthetic_eval.h"
#include "train/trainer.h"

using namespace hippo;
using hippo::test_util::error_of;
using hippo::test_util::TempDir;

namespace {

const char* kConfig =
    R"({"vocab_size": 20, "d_model": 16, "n_layer": 2, "d_state": 8, "attn_heads": 2, "layers": ["h3", "attention"]})";

TrainingOptions small_synthetic(const TempDir& dir) {
  std::ofstream(dir.file("cfg.json")) << kConfig;
  TrainingOptions o;
  o.config = dir.file("cfg.json");
  o.data = "synthetic:associative_recall";
  o.steps = 6;
  o.warmup = 2;
  o.batch_size = 4;
  o.eval_every = 3;
  o.threads = 1;
  o.seed = 11;
  o.quiet = true;
  return o;
}

}  // namespace

TEST(ApiTrain, SyntheticRunEqualsTheTrainerDrivenByHand) {
  TempDir dir("api_train");
  TrainingOptions o = small_synthetic(dir);
  o.out_dir = dir.file("run");
  const TrainingResult r = hippo::train(o);
  EXPECT_TRUE(r.synthetic);
  EXPECT_EQ(r.steps_done, 6);
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.weights, dir.file("run") + "/model.safetensors");

  // The reference: the same run set up by hand on the internal trainer.
  set_num_threads(1);
  SynthOptions so;
  so.task = parse_synth_task("associative_recall");
  so.seed = o.seed;
  so.fill_defaults();
  const SynthSplits data = make_synthetic(so);
  LanguageModel ref(ModelConfig::load(o.config));
  ref.init(o.seed);
  TrainOptions t;
  t.steps = 6;
  t.warmup_steps = 2;
  t.adam.lr = 2e-3f;
  t.adam.weight_decay = 0.1f;
  t.eval_every = 3;
  t.seed = o.seed;
  t.quiet = true;
  const TrainResult want = hippo::train(
      ref, t, [&](int64_t step, int, Batch& b) { synthetic_batch(data.train, o.seed, step, 4, b); },
      [&](LanguageModel& m) { return evaluate_synthetic(m, data.test); });
  EXPECT_EQ(r.last_loss, want.last_loss);
  EXPECT_EQ(r.last_eval, want.last_eval.metrics);
  EXPECT_EQ(r.num_params, ref.num_params());
  // The saved weights are the hand-trained model's, bit for bit.
  const auto saved = load_model(r.weights);
  ASSERT_EQ(saved->params().size(), ref.params().size());
  for (size_t i = 0; i < ref.params().size(); ++i) {
    const Tensor& a = saved->params()[i].param->value;
    const Tensor& b = ref.params()[i].param->value;
    ASSERT_EQ(a.numel(), b.numel());
    for (int64_t k = 0; k < a.numel(); ++k)
      ASSERT_EQ(a.data()[k], b.data()[k]) << ref.params()[i].name << "[" << k << "]";
  }
}

TEST(ApiTrain, StepCallbackSeesEveryStepAndCanStop) {
  TempDir dir("api_train");
  TrainingOptions o = small_synthetic(dir);
  o.out_dir = dir.file("run");
  std::vector<int64_t> steps;
  std::vector<double> losses;
  TrainingCallbacks cb;
  cb.on_step = [&](const TrainingProgress& p) {
    steps.push_back(p.step);
    losses.push_back(p.loss);
    EXPECT_EQ(p.total_steps, 6);
    EXPECT_GT(p.tokens_per_s, 0);
    return p.step < 4;  // stop after step 4
  };
  const TrainingResult r = hippo::train(o, cb);
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(r.steps_done, 4);
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.last_loss, losses.back());
  EXPECT_EQ(read_metadata(dir.file("run/checkpoint.safetensors")).at("optim.step"), "4")
      << "a stopped run is saved where it stopped";
  // Resuming continues to the full count, as after any checkpoint.
  o.resume = true;
  EXPECT_EQ(hippo::train(o).steps_done, 6);
}

TEST(ApiTrain, TextRunEmbedsTheTokenizerAndEvaluateAgrees) {
  TempDir dir("api_train");
  std::filesystem::create_directories(dir.file("corpus"));
  {
    std::ofstream f(dir.file("corpus/a.txt"));
    for (int i = 0; i < 60; ++i) f << "the quick brown fox jumps over the lazy dog " << i << "\n";
  }
  std::ofstream(dir.file("cfg.json")) << R"({"vocab_size": 257, "d_model": 16, "n_layer": 1, "d_state": 8, "layers": ["h3"]})";
  TrainingOptions o;
  o.config = dir.file("cfg.json");
  o.data = dir.file("corpus");
  o.cache_dir = dir.file("cache");
  o.steps = 3;
  o.warmup = 1;
  o.batch_size = 2;
  o.seq_len = 32;
  o.eval_tokens = 64;
  o.threads = 1;
  o.quiet = true;
  o.out_dir = dir.file("run");
  std::vector<std::string> info;
  TrainingCallbacks cb;
  cb.on_info = [&](const std::string& line) { info.push_back(line); };
  const TrainingResult r = hippo::train(o, cb);
  EXPECT_FALSE(r.synthetic);
  ASSERT_EQ(r.test.count("loss"), 1u);
  ASSERT_FALSE(info.empty());
  EXPECT_EQ(info.back().rfind("model: 1 layers", 0), 0u) << info.back();
  EXPECT_EQ(read_metadata(r.weights).at("tokenizer"), "byte");
  EXPECT_EQ(hippo::Model::load(r.weights)->tokenizer().id(), "byte-v1");

  // hippo::evaluate of the saved model on the test split gives the run's own test numbers.
  EvaluationOptions e;
  e.model = r.weights;
  e.data = o.data;
  e.cache_dir = o.cache_dir;
  e.seq_len = o.seq_len;
  e.batch_size = o.batch_size;
  e.threads = 1;
  const EvaluationResult ev = hippo::evaluate(e);
  EXPECT_EQ(ev.tokens, r.test.at("tokens"));
  EXPECT_DOUBLE_EQ(ev.loss, r.test.at("loss"));
  EXPECT_DOUBLE_EQ(ev.bits_per_byte, r.test.at("bpb"));
}

TEST(ApiTrain, OptionErrorsNameTheOption) {
  TempDir dir("api_train");
  TrainingOptions o = small_synthetic(dir);
  o.batch_size = 0;
  EXPECT_NE(error_of([&] { hippo::train(o); }).find("--batch-size must be in [1, 65536], got 0"),
            std::string::npos);
  o = small_synthetic(dir);
  o.dropout = 1.0f;
  EXPECT_NE(error_of([&] { hippo::train(o); }).find("--dropout must be in [0, 1)"), std::string::npos);
  o = small_synthetic(dir);
  o.log_every = 0;
  EXPECT_NE(error_of([&] { hippo::train(o); }).find("--log-every must be >= 1"), std::string::npos);
  EvaluationOptions e;
  e.model = dir.file("missing.safetensors");
  EXPECT_NE(error_of([&] { hippo::evaluate(e); }).find("missing.safetensors"), std::string::npos);
}
