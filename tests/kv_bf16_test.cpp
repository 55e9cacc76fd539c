// The bf16 KV cache (issue 18): the kernels against a double-precision loop on the same bf16
// values (fast path and portable loop), decoding with a bf16 cache against fp32 (logits within
// a stated tolerance; prefill and steps agree on the rounded keys), states that save, load and
// fork with their dtype, and a state refused by a model whose cache dtype differs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "core/bf16.h"
#include "core/rng.h"
#include "generate/state_io.h"
#include "kernels/kv_bf16.h"
#include "models/lm.h"
#include "kv_cache_cases.h"
#include "model_cases.h"
#include "test_util.h"

using namespace hippo;
using hippo::test_util::error_of;
using test_models::config_with;
using test_models::init_model;
using test_models::random_tokens;
using namespace hippo::kv_cases;

namespace {

std::vector<uint16_t> random_bf16(int64_t n, Rng& rng) {
  std::vector<uint16_t> out(static_cast<size_t>(n));
  for (auto& x : out) x = f32_to_bf16(static_cast<float>(rng.uniform() * 4.0 - 2.0));
  return out;
}

using ScoresFn = void (*)(const float*, const uint16_t*, int64_t, int, float, float*);
using SumFn = void (*)(const float*, const uint16_t*, int64_t, int, float*);

void check_kernels(ScoresFn scores, SumFn sum, const char* which) {
  Rng rng(5);
  for (int dh : {16, 48, 64, 80, 128, 24}) {
    for (int64_t n : {1, 3, 17, 300}) {
      std::vector<float> q(static_cast<size_t>(dh)), p(static_cast<size_t>(n));
      for (auto& x : q) x = static_cast<float>(rng.uniform() * 2.0 - 1.0);
      for (auto& x : p) x = static_cast<float>(rng.uniform());
      const auto K = random_bf16(n * dh, rng), V = random_bf16(n * dh, rng);
      const float scale = 0.125f;
      std::vector<float> s(static_cast<size_t>(n)), o(static_cast<size_t>(dh), 99.0f);
      scores(q.data(), K.data(), n, dh, scale, s.data());
      sum(p.data(), V.data(), n, dh, o.data());
      for (int64_t j = 0; j < n; ++j) {
        double want = 0, mag = 0;
        for (int i = 0; i < dh; ++i) {
          const double t = static_cast<double>(q[i]) * bf16_to_f32(K[j * dh + i]);
          want += t;
          mag += std::fabs(t);
        }
        // fp32 accumulation of dh products: a few ulps of the magnitude sum.
        ASSERT_NEAR(s[j], want * scale, 4e-7 * dh * mag * scale + 1e-30)
            << which << " scores dh=" << dh << " n=" << n << " j=" << j;
      }
      for (int i = 0; i < dh; ++i) {
        double want = 0, mag = 0;
        for (int64_t j = 0; j < n; ++j) {
          const double t = static_cast<double>(p[j]) * bf16_to_f32(V[j * dh + i]);
          want += t;
          mag += std::fabs(t);
        }
        ASSERT_NEAR(o[i], want, 2e-7 * static_cast<double>(n) * mag + 1e-30)
            << which << " sum dh=" << dh << " n=" << n << " i=" << i;
      }
    }
  }
}

}  // namespace

TEST(KvBf16, KernelsEqualTheDoubleLoopOnTheSameBf16Values) {
  check_kernels(kv_bf16_scores, kv_bf16_weighted_sum, "dispatched");
  check_kernels(kv_bf16_scores_portable, kv_bf16_weighted_sum_portable, "portable");
}

TEST(KvBf16, DecodingStaysWithinToleranceOfFp32AndPrefillAgreesWithSteps) {
  const auto pf = hybrid(KvCacheDType::F32), pb = hybrid(KvCacheDType::BF16);
  const LanguageModel &f32 = *pf, &b16 = *pb;
  const auto tok = random_tokens(kB * (kPrompt + kSteps), f32.config().vocab_size, 11);
  const auto a = run(f32, tok, kPrompt), b = run(b16, tok, kPrompt);
  double mag = 0;
  for (float x : a) mag = std::max(mag, std::fabs(static_cast<double>(x)));
  const double d = max_abs_diff(a, b);
  // Keys and values rounded to 8 mantissa bits (relative 2^-9): logits move by 3.0e-4 on
  // this model (largest |logit| 9.7, i.e. 3e-5 of the scale); the bound is 1e-3 of the scale.
  EXPECT_LT(d, 1e-3 * mag) << "max |logit| " << mag;
  std::printf("bf16 KV cache: max |logit difference| %.3g, max |logit| %.3g\n", d, mag);
  EXPECT_GT(d, 0.0) << "the bf16 cache rounded nothing: is it used?";
  // The prompt's keys are rounded as the steps' are: one prompt token then steps decodes
  // the same logits as the whole prompt at once (up to fp32 summation order).
  const auto c = run(b16, tok, 1);
  const int64_t block = kB * f32.config().padded_vocab();
  const std::vector<float> tail_b(b.begin() + block, b.end());
  const std::vector<float> tail_c(c.end() - static_cast<int64_t>(tail_b.size()), c.end());
  EXPECT_LT(max_abs_diff(tail_b, tail_c), 1e-4 * mag);
}

TEST(KvBf16, StatesSaveLoadAndForkWithTheirDtypeAndRefuseAnother) {
  const auto pb = hybrid(KvCacheDType::BF16);
  const LanguageModel& b16 = *pb;
  const auto tok = random_tokens(kB * (kPrompt + kSteps), b16.config().vocab_size, 12);
  ModelState st = b16.new_state(kB);
  const auto rows = prompt_rows(tok, kPrompt);
  b16.prefill(rows.data(), kB, kPrompt, st);
  const std::vector<uint8_t> bytes = save_state_bytes(b16, st, st.logits.data());
  ModelState restored = load_state_bytes(bytes, b16, nullptr, "bf16 state");
  ModelState forked = clone_state(st);
  for (int t = kPrompt; t < kPrompt + kSteps; ++t) {
    const int64_t n = kB * b16.config().padded_vocab();
    const float* w = b16.step(tok.data() + kB * t, st);
    const std::vector<float> want(w, w + n);
    const float* r = b16.step(tok.data() + kB * t, restored);
    EXPECT_EQ(std::vector<float>(r, r + n), want) << "restored, step " << t;
    const float* f = b16.step(tok.data() + kB * t, forked);
    EXPECT_EQ(std::vector<float>(f, f + n), want) << "forked, step " << t;
  }
  // The same weights with an fp32 cache: refused, naming both dtypes.
  const auto pf = hybrid(KvCacheDType::F32);
  const LanguageModel& f32 = *pf;
  const std::string e = error_of([&] { load_state_bytes(bytes, f32, nullptr, "bf16 state"); });
  EXPECT_NE(e.find("saved with a bf16 KV cache but the model runs a fp32 KV cache"), std::string::npos) << e;
  // And an fp32 state into a bf16 model.
  ModelState s32 = f32.new_state(kB);
  f32.prefill(rows.data(), kB, kPrompt, s32);
  const std::vector<uint8_t> b32 = save_state_bytes(f32, s32, nullptr);
  EXPECT_NE(error_of([&] { load_state_bytes(b32, b16, nullptr, "fp32 state"); }).find("fp32 KV cache"),
            std::string::npos);
}
