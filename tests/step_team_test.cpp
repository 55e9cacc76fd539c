// A decoding step as one parallel region (StepThreading::OneRegion, models/lm_step_team.cpp)
// against the per-op path (StepThreading::PerOp, the reference): the same logits, bit for bit
// on the small-rows kernels, for every model kind and weight dtype, at 1 and 2 threads, for
// single states and step_many of several; and the team machinery (core/team.h) itself.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <vector>

#include "core/team.h"
#include "core/threads.h"
#include "hippo/hippo.hpp"
#include "kernels/gemm_bf16.h"
#include "kernels/gemm_small.h"
#include "models/bf16_weights.h"
#include "models/lm.h"
#include "models/q8_weights.h"
#include "model_cases.h"
#include "test_util.h"

using namespace hippo;

namespace {

using test_models::Case;
using test_models::cases;
using test_models::config_with;
using test_models::init_model;
using test_models::random_tokens;

enum class Dtype { F32, BF16, BF16Rounded, Q8 };
const char* name_of(Dtype t) {
  return t == Dtype::F32 ? "fp32" : t == Dtype::BF16 ? "bf16" : t == Dtype::BF16Rounded
                                                                      ? "bf16-rounded-x"
                                                                      : "q8";
}

// Restores the process-wide settings a test changes.
struct Settings {
  StepThreading mode = step_threading();
  int threads = num_threads();
  Bf16Activations act = bf16_activations();
  ~Settings() {
    set_step_threading(mode);
    set_num_threads(threads);
    set_bf16_activations(act);
  }
};

// Every logit of: state A (batch 1) after a 5-token prompt, 4 steps alone; state B (batch 2)
// after a 3-token prompt; then 3 steps of A and B together (step_many); then 2 steps of a
// fresh state (no prompt: the first step fills an empty attention cache).
std::vector<float> run(const LanguageModel& m, const std::vector<int32_t>& pool) {
  const int64_t V = m.config().padded_vocab();
  std::vector<float> out;
  auto keep = [&](const float* lg, int rows) { out.insert(out.end(), lg, lg + rows * V); };
  size_t next = 0;
  auto tok = [&] { return pool[next++ % pool.size()]; };
  ModelState a = m.new_state(1), b = m.new_state(2), c = m.new_state(1);
  std::vector<int32_t> pa(5), pb(6);
  for (auto& t : pa) t = tok();
  for (auto& t : pb) t = tok();
  keep(m.prefill(pa.data(), 1, 5, a), 1);
  m.prefill(pb.data(), 2, 3, b);
  for (int s = 0; s < 4; ++s) {
    const int32_t t = tok();
    keep(m.step(&t, a), 1);
  }
  std::vector<ModelState*> both = {&b, &a};
  for (int s = 0; s < 3; ++s) {
    const std::vector<int32_t> t = {tok(), tok(), tok()};
    m.step_many(t.data(), both);
    keep(b.logits.data(), 2);
    keep(a.logits.data(), 1);
  }
  for (int s = 0; s < 2; ++s) {
    const int32_t t = tok();
    keep(m.step(&t, c), 1);
  }
  return out;
}

// Bit for bit where matmul_xwt_part takes the small-rows kernels; within 1e-6 of the largest
// logit elsewhere (fp32 without AVX-512 runs oneDNN on row ranges of the weights).
void expect_same(const std::vector<float>& got, const std::vector<float>& want, Dtype t,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  if (small_rows_kernel_available() || t == Dtype::Q8) {
    EXPECT_EQ(got, want) << what;
    return;
  }
  double err = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err = std::max(err, std::abs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::abs(static_cast<double>(want[i])));
  }
  EXPECT_LE(err, 1e-6 * scale) << what;
}

}  // namespace

TEST(StepTeam, OneRegionEqualsPerOpForEveryModelKindAndDtypeAtOneAndTwoThreads) {
  Settings keep;
  std::vector<Dtype> dtypes = {Dtype::F32, Dtype::BF16, Dtype::Q8};
  if (small_rows_bf16_dot_available()) dtypes.push_back(Dtype::BF16Rounded);
  for (const Case& c : cases()) {
    // d 64: every linear layer's rows are whole q8 blocks, and two threads' shares of the
    // channels (32 each) and of the vocabulary are not empty.
    nlohmann::json cfg = c.cfg;
    cfg["d_model"] = 64;
    for (Dtype t : dtypes) {
      LanguageModel m(config_with(cfg));
      init_model(m, 7);
      if (t == Dtype::BF16 || t == Dtype::BF16Rounded) convert_weights_to_bf16(m);
      if (t == Dtype::Q8) convert_weights_to_q8(m);
      // As LoadOptions::kv_cache "auto" gives bf16 and q8 files: a bf16 KV cache.
      if (t != Dtype::F32) m.set_kv_cache(KvCacheDType::BF16);
      set_bf16_activations(t == Dtype::BF16Rounded ? Bf16Activations::RoundedToBf16
                                                   : Bf16Activations::Exact);
      const auto pool = random_tokens(61, m.config().vocab_size, 3);
      set_num_threads(1);
      set_step_threading(StepThreading::PerOp);
      const std::vector<float> want = run(m, pool);
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        set_step_threading(StepThreading::OneRegion);
        expect_same(run(m, pool), want, t,
                    std::string(c.name) + " " + name_of(t) + " at " + std::to_string(threads) +
                        " threads");
        set_step_threading(StepThreading::PerOp);
        expect_same(run(m, pool), want, t,
                    std::string(c.name) + " " + name_of(t) + " per-op at " +
                        std::to_string(threads) + " threads");
      }
    }
  }
}

TEST(StepTeam, SharesCoverTheRangeInAlignedPiecesInOrder) {
  for (int n : {1, 2, 3, 4}) {
    for (int64_t items : {0, 1, 15, 16, 17, 64, 768, 3072, 50304, 50257}) {
      for (int64_t align : {1, 16, 48}) {
        int64_t prev = 0;
        for (int t = 0; t < n; ++t) {
          const auto [b, e] = Team{t, n, nullptr}.share(items, align);
          EXPECT_EQ(b, prev) << items << " " << align << " " << t << "/" << n;
          EXPECT_LE(b, e);
          if (e != items) {
            EXPECT_EQ(e % align, 0);
          }
          prev = e;
        }
        EXPECT_EQ(prev, items);
      }
    }
  }
  // Even enough to be worth it: two threads split 768 channels and 3072 MLP outputs in halves.
  EXPECT_EQ((Team{0, 2, nullptr}.share(768)), (std::pair<int64_t, int64_t>{0, 384}));
  EXPECT_EQ((Team{1, 2, nullptr}.share(3072)), (std::pair<int64_t, int64_t>{1536, 3072}));
}

TEST(StepTeam, BarrierOrdersWritesAndAnErrorInOneThreadEndsTheTeam) {
  // Every thread writes its slot, meets the others, then reads all slots: 50 rounds.
  std::vector<int> slots(2, 0);
  std::atomic<int> bad{0};
  run_team(2, [&](const Team& team) {
    for (int round = 1; round <= 50; ++round) {
      slots[team.t] = round;
      team.barrier();
      for (int s : slots) bad += s != round;
      team.barrier();
    }
  });
  EXPECT_EQ(bad.load(), 0);
  // Thread 1 throws while thread 0 waits at a barrier: no hang, the Error comes back here.
  const std::string msg = test_util::error_of([&] {
    run_team(2, [&](const Team& team) {
      if (team.t == 1) throw Error("thread one failed");
      team.barrier();
      team.barrier();
    });
  });
  EXPECT_NE(msg.find("thread one failed"), std::string::npos) << msg;
}

TEST(StepTeam, ModelInfoNamesTheWeightDtype) {
  test_util::TempDir dir("step_team");
  LanguageModel m(config_with({{"layers", {"h3", "attention"}}, {"d_model", 64}, {"vocab_size", 257}}));
  init_model(m, 1);
  const std::string q8 = dir.file("q8.safetensors"), bf16 = dir.file("bf16.safetensors");
  save_weights_q8(q8, m);
  save_weights_bf16(bf16, m);
  const auto mq = Model::load(q8);
  EXPECT_EQ(mq->info().weights_dtype, "q8");
  EXPECT_FALSE(mq->info().bf16_weights);
  EXPECT_EQ(mq->info().kv_cache, "bf16");  // LoadOptions::kv_cache "auto" follows the weights
  const auto mb = Model::load(bf16);
  EXPECT_EQ(mb->info().weights_dtype, "bf16");
  EXPECT_TRUE(mb->info().bf16_weights);
  LoadOptions read;
  read.mmap = false;
  const auto mf = Model::load(bf16, read);  // read into fp32
  EXPECT_EQ(mf->info().weights_dtype, "fp32");
  EXPECT_FALSE(mf->info().bf16_weights);
  EXPECT_EQ(mf->info().kv_cache, "fp32");
  read.kv_cache = "bf16";
  EXPECT_EQ(Model::load(bf16, read)->info().kv_cache, "bf16");
  read.kv_cache = "f16";
  EXPECT_NE(test_util::error_of([&] { Model::load(bf16, read); }).find("kv_cache must be"),
            std::string::npos);
}
