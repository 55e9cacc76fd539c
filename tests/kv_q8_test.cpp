// The q8 KV cache (issue 18, session 15): the row quantizer's contract, the kernels against a
// double-precision loop on the same int8 values and scales (fast path and portable loop),
// decoding with a q8 cache against fp32 (logits within a stated tolerance; prefill and steps
// agree on the rounded keys), states that save, load and fork exactly, and state files whose
// q8 cache is not whole numbers in [-127, 127] or whose dtype differs are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <vector>

#include "core/rng.h"
#include "generate/state_io.h"
#include "io/safetensors.h"
#include "kernels/kv_q8.h"
#include "models/lm.h"
#include "kv_cache_cases.h"
#include "model_cases.h"
#include "test_util.h"

using namespace hippo;
using hippo::test_util::error_of;
using hippo::test_util::TempDir;
using test_models::config_with;
using test_models::init_model;
using test_models::random_tokens;
using namespace hippo::kv_cases;

namespace {

using ScoresFn = void (*)(const float*, const int8_t*, const float*, int64_t, int, float, float*);
using SumFn = void (*)(const float*, const int8_t*, const float*, int64_t, int, float*);

void check_kernels(ScoresFn scores, SumFn sum, const char* which) {
  Rng rng(5);
  for (int dh : {16, 48, 64, 80, 128, 24}) {
    for (int64_t n : {1, 3, 17, 300}) {
      std::vector<float> q(static_cast<size_t>(dh)), p(static_cast<size_t>(n)), ks(p.size()),
          vs(p.size());
      for (auto& x : q) x = static_cast<float>(rng.uniform() * 2.0 - 1.0);
      for (auto& x : p) x = static_cast<float>(rng.uniform());
      for (auto& x : ks) x = static_cast<float>(rng.uniform() * 0.05);
      for (auto& x : vs) x = static_cast<float>(rng.uniform() * 0.05);
      std::vector<int8_t> K(static_cast<size_t>(n * dh)), V(K.size());
      for (auto& x : K) x = static_cast<int8_t>(static_cast<int>(rng.uniform() * 255) - 127);
      for (auto& x : V) x = static_cast<int8_t>(static_cast<int>(rng.uniform() * 255) - 127);
      const float scale = 0.125f;
      std::vector<float> s(static_cast<size_t>(n)), o(static_cast<size_t>(dh), 99.0f);
      scores(q.data(), K.data(), ks.data(), n, dh, scale, s.data());
      sum(p.data(), V.data(), vs.data(), n, dh, o.data());
      for (int64_t j = 0; j < n; ++j) {
        double want = 0, mag = 0;
        for (int i = 0; i < dh; ++i) {
          const double t = static_cast<double>(q[i]) * K[j * dh + i] * ks[j];
          want += t;
          mag += std::fabs(t);
        }
        ASSERT_NEAR(s[j], want * scale, 4e-7 * dh * mag * scale + 1e-30)
            << which << " scores dh=" << dh << " n=" << n << " j=" << j;
      }
      for (int i = 0; i < dh; ++i) {
        double want = 0, mag = 0;
        for (int64_t j = 0; j < n; ++j) {
          const double t = static_cast<double>(p[j]) * vs[j] * V[j * dh + i];
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

// |q| <= 127, every value within half a step of x (s = max|x| / 127), the largest exactly
// +-127; a zero row gets scale 0; a row with NaN or Inf gets a NaN scale.
TEST(KvQ8, RowQuantizerKeepsItsContract) {
  Rng rng(4);
  for (int dh : {1, 8, 64, 80}) {
    std::vector<float> x(static_cast<size_t>(dh));
    for (auto& v : x) v = static_cast<float>(rng.normal() * 3.0);
    std::vector<int8_t> q(x.size());
    float s = 0;
    kv_q8_quantize_row(x.data(), dh, q.data(), &s);
    double amax = 0;
    for (float v : x) amax = std::max(amax, std::fabs(static_cast<double>(v)));
    EXPECT_NEAR(s, amax / 127, 1e-6 * amax) << dh;
    int at127 = 0;
    for (int i = 0; i < dh; ++i) {
      EXPECT_LE(std::abs(static_cast<int>(q[i])), 127);
      EXPECT_LE(std::fabs(q[i] * static_cast<double>(s) - x[i]), 0.5 * s * (1 + 1e-5)) << dh << " " << i;
      at127 += std::abs(static_cast<int>(q[i])) == 127;
    }
    EXPECT_GE(at127, 1) << dh;
  }
  std::vector<float> zero(16, 0.0f), bad(16, 1.0f);
  std::vector<int8_t> q(16, 5);
  float s = 1;
  kv_q8_quantize_row(zero.data(), 16, q.data(), &s);
  EXPECT_EQ(s, 0.0f);
  EXPECT_EQ(q, std::vector<int8_t>(16, 0));
  bad[3] = std::numeric_limits<float>::infinity();
  kv_q8_quantize_row(bad.data(), 16, q.data(), &s);
  EXPECT_TRUE(std::isnan(s));
}

TEST(KvQ8, KernelsEqualTheDoubleLoopOnTheSameInt8Values) {
  check_kernels(kv_q8_scores, kv_q8_weighted_sum, "dispatched");
  check_kernels(kv_q8_scores_portable, kv_q8_weighted_sum_portable, "portable");
}

TEST(KvQ8, DecodingStaysWithinToleranceOfFp32AndPrefillAgreesWithSteps) {
  const auto pf = hybrid(KvCacheDType::F32), pq = hybrid(KvCacheDType::Q8);
  const LanguageModel &f32 = *pf, &q8 = *pq;
  const auto tok = random_tokens(kB * (kPrompt + kSteps), f32.config().vocab_size, 11);
  const auto a = run(f32, tok, kPrompt), b = run(q8, tok, kPrompt);
  double mag = 0;
  for (float x : a) mag = std::max(mag, std::fabs(static_cast<double>(x)));
  const double d = max_abs_diff(a, b);
  // Keys and values rounded to 1/254 of their row's largest: logits move by ~1e-3 of their
  // scale on this model (printed); the bound is 1e-2 of the scale.
  EXPECT_LT(d, 1e-2 * mag) << "max |logit| " << mag;
  std::printf("q8 KV cache: max |logit difference| %.3g, max |logit| %.3g\n", d, mag);
  EXPECT_GT(d, 0.0) << "the q8 cache rounded nothing: is it used?";
  // The prompt's keys are rounded as the steps' are: one prompt token then steps decodes the
  // same logits as the whole prompt at once (up to fp32 summation order).
  const auto c = run(q8, tok, 1);
  const int64_t block = kB * f32.config().padded_vocab();
  const std::vector<float> tail_b(b.begin() + block, b.end());
  const std::vector<float> tail_c(c.end() - static_cast<int64_t>(tail_b.size()), c.end());
  EXPECT_LT(max_abs_diff(tail_b, tail_c), 1e-4 * mag);
}

TEST(KvQ8, StatesSaveLoadAndForkExactlyAndBadFilesAreRefused) {
  const auto pq = hybrid(KvCacheDType::Q8);
  const LanguageModel& q8 = *pq;
  const auto tok = random_tokens(kB * (kPrompt + kSteps), q8.config().vocab_size, 12);
  ModelState st = q8.new_state(kB);
  const auto rows = prompt_rows(tok, kPrompt);
  q8.prefill(rows.data(), kB, kPrompt, st);
  const std::vector<uint8_t> bytes = save_state_bytes(q8, st, st.logits.data());
  ModelState restored = load_state_bytes(bytes, q8, nullptr, "q8 state");
  ModelState forked = clone_state(st);
  for (int t = kPrompt; t < kPrompt + kSteps; ++t) {
    const int64_t n = kB * q8.config().padded_vocab();
    const float* w = q8.step(tok.data() + kB * t, st);
    const std::vector<float> want(w, w + n);
    const float* r = q8.step(tok.data() + kB * t, restored);
    EXPECT_EQ(std::vector<float>(r, r + n), want) << "restored, step " << t;
    const float* f = q8.step(tok.data() + kB * t, forked);
    EXPECT_EQ(std::vector<float>(f, f + n), want) << "forked, step " << t;
  }
  // The same weights with a bf16 cache: refused, naming both dtypes (before the tensors,
  // which differ: the q8 file has scales).
  const auto pb = hybrid(KvCacheDType::BF16);
  const std::string e = error_of([&] { load_state_bytes(bytes, *pb, nullptr, "q8 state"); });
  EXPECT_NE(e.find("saved with a q8 KV cache but the model runs a bf16 KV cache"), std::string::npos) << e;
  // A file whose q8 values are not whole numbers in [-127, 127], or whose scale is negative.
  TempDir dir("kv_q8_bad");
  const std::string good = dir.file("good.state"), bad = dir.file("bad.state");
  save_state(good, q8, st);
  auto refused = [&](const char* tensor, float value, const char* expect) {
    SafeTensors f = load_safetensors(good);
    f.tensors.at(tensor).data()[1] = value;
    std::vector<NamedTensor> list;
    for (auto& [name, t] : f.tensors) list.push_back({name, &t});
    f.metadata["checksum"] = state_checksum(f.metadata, list);
    save_safetensors(bad, list, f.metadata);
    const std::string msg = error_of([&] { load_state(bad, q8); });
    EXPECT_NE(msg.find(tensor), std::string::npos) << tensor << " " << value << ": " << msg;
    EXPECT_NE(msg.find(expect), std::string::npos) << tensor << " " << value << ": " << msg;
  };
  refused("layers.1.k", 0.5f, "whole numbers");
  refused("layers.1.v", 128.0f, "whole numbers");
  refused("layers.3.k_scale", -1.0f, "scales are >= 0");
  EXPECT_NO_THROW(load_state(good, q8));
}
