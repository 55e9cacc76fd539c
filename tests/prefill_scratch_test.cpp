// Prefill's scratch memory (issue 16, session 10): the buffers a prefill allocates per call
// without zeroing (alloc_floats_uninit) are written in full before they are read, for every
// model kind; the MLP's hidden rows go through in blocks; an H3 prefill holds no buffer that
// is dead at its peak; the AVX-512 direct convolution equals the axpy form bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/cpu_features.h"
#include "core/rng.h"
#include "kernels/causal_conv_direct.h"
#include "model_cases.h"
#include "nn/h3.h"
#include "nn/mlp.h"

using namespace hippo;
using namespace hippo::test_models;

namespace hippo::test_models {
void PrintTo(const Case& c, std::ostream* os);
}  // namespace hippo::test_models

namespace {

struct Results {
  std::vector<float> last, nll;
};

// Last logits of chunked prefills and per-position losses of chunked scores, several lengths
// and chunks (the first chunk longer than later ones, so that buffers are reused shorter).
Results run_all(const LanguageModel& m) {
  Results r;
  const int64_t V = m.config().padded_vocab();
  for (int B : {1, 2})
    for (auto [L, chunk] : {std::pair{1, 8}, std::pair{7, 3}, std::pair{33, 8}, std::pair{70, 64},
                            std::pair{150, 64}}) {
      const std::vector<int32_t> t = random_tokens(B * L, 41, 5 + L + B);
      ModelState st = m.new_state(B);
      st.chunk = chunk;
      const float* lg = m.prefill(t.data(), B, L, st);
      r.last.insert(r.last.end(), lg, lg + B * V);
      ModelState sc = m.new_state(B);
      sc.chunk = chunk;
      std::vector<int32_t> targets(t.begin() + 1, t.end());
      targets.push_back(0);
      std::vector<float> nll(t.size());
      m.score(t.data(), targets.data(), B, L, sc, nll.data());
      r.nll.insert(r.nll.end(), nll.begin(), nll.end());
    }
  return r;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class PrefillScratch : public ::testing::TestWithParam<Case> {};

// With every uninitialised allocation filled with NaN, prefill and score give the same bits as
// with whatever the allocator returned: nothing reads scratch it did not write first.
TEST_P(PrefillScratch, UninitScratchIsWrittenBeforeRead) {
  const Case& c = GetParam();
  nlohmann::json cfg = c.cfg;
  cfg["max_position"] = 160;  // learned positions: room for the longest prompt below
  LanguageModel m(config_with(cfg));
  init_model(m, 4);
  const Results plain = run_all(m);
  poison_uninit_floats(true);
  const Results poisoned = run_all(m);
  poison_uninit_floats(false);
  for (float v : poisoned.last) ASSERT_TRUE(std::isfinite(v)) << c.name;
  for (float v : poisoned.nll) ASSERT_TRUE(std::isfinite(v)) << c.name;
  EXPECT_TRUE(bitwise_equal(plain.last, poisoned.last)) << c.name;
  EXPECT_TRUE(bitwise_equal(plain.nll, poisoned.nll)) << c.name;
}

INSTANTIATE_TEST_SUITE_P(All, PrefillScratch, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// The poison itself: a buffer from get_uninit reads NaN while it is on, zero from get.
TEST(PrefillScratchPoison, UninitBuffersReadNanWhilePoisoned) {
  poison_uninit_floats(true);
  Buffer a, b;
  const float* pa = a.get_uninit(1000);
  const float* pb = b.get(1000);
  poison_uninit_floats(false);
  EXPECT_TRUE(std::isnan(pa[0]) && std::isnan(pa[999]));
  EXPECT_EQ(pb[0], 0.0f);
  EXPECT_EQ(pb[999], 0.0f);
}

// forward_inference runs the rows in blocks of kInferenceRows with a hidden buffer of one
// block: equal to the training forward over all rows at once.
TEST(PrefillScratchMlp, BlocksEqualWholeRows) {
  const int d = 16;
  Mlp mlp(d);
  Rng rng(2);
  mlp.init(rng, 2);
  const int64_t rows = 2 * Mlp::kInferenceRows + 37;
  std::vector<float> x(static_cast<size_t>(rows) * d), y(x.size()), ref(x.size());
  for (float& v : x) v = static_cast<float>(rng.normal());
  mlp.forward(x.data(), ref.data(), rows);
  Buffer hidden;
  mlp.forward_inference(x.data(), y.data(), rows, hidden);
  EXPECT_EQ(hidden.capacity(), static_cast<size_t>(Mlp::kInferenceRows) * 4 * d);
  double worst = 0, scale = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::fabs(y[i] - ref[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(ref[i])));
  }
  EXPECT_LE(worst, 1e-6 * scale);
}

// An fp32 H3 prefill on the direct layout (L >= 32) leaves the workspace's transpose scratch
// (slot 0) and its k' ⊙ v slot (5) unallocated: k' ⊙ v for the state goes into q's buffer.
TEST(PrefillScratchH3, DirectPrefillHoldsNoDeadBuffers) {
  const int d = 32, L = 100;
  H3 h3(d, 8);
  Rng rng(6);
  h3.init(rng, 2);
  std::vector<float> x(static_cast<size_t>(L) * d), y(x.size());
  for (float& v : x) v = static_cast<float>(rng.normal());
  auto st = h3.new_state(1);
  Workspace ws;
  h3.prefill(x.data(), y.data(), 1, L, *st, ws);
  EXPECT_EQ(ws.slot(0).capacity(), 0u);  // tmp
  EXPECT_EQ(ws.slot(5).capacity(), 0u);  // kv
  EXPECT_GE(ws.slot(1).capacity(), static_cast<size_t>(L) * d);  // qT (then k' ⊙ v)
}

// The direct convolution at every level against the per-output sum, at lengths that cover the
// AVX-512 kernel's 128-output blocks, its vector tail and its masked tail, with N above and
// below L; and the AVX-512 kernel bitwise equal to the axpy form it replaced (the same fused
// products in the same order).
TEST(PrefillScratchConv, DirectConvBlocksMatchTheReferenceAndTheAxpyForm) {
  Rng rng(12);
  for (int N : {1, 8, 64, 200})
    for (int L : {1, 5, 16, 63, 64, 127, 128, 129, 200, 300, 512}) {
      const int H = 3;
      std::vector<float> u(static_cast<size_t>(H) * L), K(static_cast<size_t>(H) * N);
      for (float& v : u) v = static_cast<float>(rng.normal());
      for (float& v : K) v = static_cast<float>(rng.normal());
      std::vector<double> ref(u.size());
      double scale = 0;
      for (int h = 0; h < H; ++h)
        for (int t = 0; t < L; ++t) {
          double acc = 0, mag = 0;
          for (int j = 0; j < N && j <= t; ++j) {
            acc += static_cast<double>(K[h * N + j]) * u[h * L + t - j];
            mag += std::fabs(static_cast<double>(K[h * N + j]) * u[h * L + t - j]);
          }
          ref[h * L + t] = acc;
          scale = std::max(scale, mag);
        }
      // The axpy form, with the fused multiply-add the compiled kernels use.
      std::vector<float> axpy(u.size(), 0.0f);
      for (int h = 0; h < H; ++h)
        for (int j = 0; j < std::min(N, L); ++j)
          for (int t = 0; t + j < L; ++t)
            axpy[h * L + t + j] = std::fma(K[h * N + j], u[h * L + t], axpy[h * L + t + j]);
      for (Isa level : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
        if (level > detected_isa()) continue;
        ScopedIsa scoped(level);
        std::vector<float> y(u.size(), -7.0f);
        causal_conv_direct(u.data(), K.data(), y.data(), 1, H, L, N);
        double worst = 0;
        for (size_t i = 0; i < y.size(); ++i) worst = std::max(worst, std::fabs(y[i] - ref[i]));
        EXPECT_LE(worst, 1e-6 * std::max(scale, 1.0)) << isa_name(level) << " N " << N << " L " << L;
        if (level == Isa::Avx512) {
          EXPECT_TRUE(bitwise_equal(y, axpy)) << "N " << N << " L " << L;
        }
      }
    }
}

}  // namespace
