// q8 kernels (kernels/gemm_q8.h): quantization, the decoding kernel at every instruction-set
// level against a double-precision loop on the same quantized values, the prompt path against
// a double loop on the dequantized weights, and the typed entry (kernels/matmul.h).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/gemm_q8.h"
#include "kernels/matmul.h"
#include "test_util.h"

using namespace hippo;
using hippo::test_util::error_of;

namespace {

struct Q8Weights {
  std::vector<int8_t> q;
  std::vector<float> s;
  int64_t rows, cols;
  WeightView view() const { return {DType::Q8, q.data(), rows, cols, s.data()}; }
};

std::vector<float> normal(int64_t n, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = scale * static_cast<float>(rng.normal());
  return v;
}

Q8Weights random_q8(int64_t rows, int64_t cols, uint64_t seed) {
  Q8Weights w{{}, {}, rows, cols};
  auto f = normal(rows * cols, seed, 0.05f);
  for (int64_t i = 0; i < cols; ++i) f[static_cast<size_t>(i)] = 0.0f;  // an all-zero first row
  w.q.resize(f.size());
  w.s.resize(f.size() / kQ8Block);
  quantize_q8(f.data(), rows, cols, w.q.data(), w.s.data());
  return w;
}

std::vector<Isa> enabled_levels() {
  std::vector<Isa> out;
  for (Isa l : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16})
    if (isa_enabled(l)) out.push_back(l);
  return out;
}

}  // namespace

TEST(Q8Kernels, QuantizeRoundsToNearestWithinHalfAStep) {
  auto x = normal(4 * 64, 7);
  for (int i = 64; i < 96; ++i) x[i] = 0.0f;  // block 2 all zero
  std::vector<int8_t> q(x.size());
  std::vector<float> s(x.size() / 32);
  quantize_q8(x.data(), 4, 64, q.data(), s.data());
  for (size_t b = 0; b < s.size(); ++b) {
    int qmax = 0;
    double amax = 0;
    for (size_t i = b * 32; i < (b + 1) * 32; ++i) {
      qmax = std::max(qmax, std::abs(static_cast<int>(q[i])));
      amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
      ASSERT_LE(std::fabs(static_cast<double>(s[b]) * q[i] - x[i]), 0.5001 * s[b] + 1e-12) << i;
    }
    if (b == 2) {
      EXPECT_EQ(s[b], 0.0f);
      EXPECT_EQ(qmax, 0);
    } else {
      EXPECT_EQ(qmax, 127) << b;
      EXPECT_NEAR(s[b], amax / 127, 1e-6 * amax);
    }
  }
  // A non-finite element makes its block's scale NaN (the product is NaN, as in fp32).
  x[5] = std::numeric_limits<float>::infinity();
  quantize_q8(x.data(), 4, 64, q.data(), s.data());
  EXPECT_TRUE(std::isnan(s[0]));
  EXPECT_FALSE(std::isnan(s[1]));
  EXPECT_NE(error_of([&] { quantize_q8(x.data(), 1, 40, q.data(), s.data()); }).find("multiple of 32"),
            std::string::npos);
}

// Weights (session 14): each scale is the smallest bf16 value >= amax / 127 (worked out here by
// stepping bf16 values up from below, in double), the values within half a step, |q| <= 127,
// over magnitudes from 1e-30 to 1e30 (bf16 has fp32's exponent range: no subnormal scales).
TEST(Q8Kernels, WeightScalesAreTheSmallestBf16AtOrAboveAmaxOver127) {
  auto x = normal(8 * 64, 17);
  const double mags[] = {1e-30, 1e-6, 3e-3, 0.02, 1.0, 7.3, 1e5, 1e30};
  for (int b = 0; b < 16; ++b)
    for (int i = 0; i < 32; ++i) x[b * 32 + i] *= static_cast<float>(mags[b % 8]);
  for (int i = 32; i < 64; ++i) x[i] = 0.0f;  // block 1 all zero
  std::vector<int8_t> q(x.size());
  std::vector<float> s(x.size() / 32);
  quantize_q8_weights(x.data(), 8, 64, q.data(), s.data());
  for (size_t b = 0; b < s.size(); ++b) {
    double amax = 0;
    int qmax = 0;
    for (size_t i = b * 32; i < (b + 1) * 32; ++i) {
      amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
      qmax = std::max(qmax, std::abs(static_cast<int>(q[i])));
      ASSERT_LE(std::fabs(static_cast<double>(s[b]) * q[i] - x[i]), 0.5001 * s[b] + 1e-40) << i;
    }
    if (amax == 0) {
      EXPECT_EQ(s[b], 0.0f);
      EXPECT_EQ(qmax, 0);
      continue;
    }
    const double want = static_cast<double>(static_cast<float>(amax) / 127.0f);
    // Largest bf16 value below `want`, then up by one bf16 step until at or above it.
    uint32_t u;
    const float wf = static_cast<float>(want);
    std::memcpy(&u, &wf, 4);
    u &= 0xFFFF0000u;
    float c;
    std::memcpy(&c, &u, 4);
    while (static_cast<double>(c) < want) {
      u += 0x10000u;
      std::memcpy(&c, &u, 4);
    }
    EXPECT_EQ(s[b], c) << "block " << b << " amax " << amax;
    EXPECT_LE(s[b], want * (1 + 1.0 / 128)) << b;  // at most one bf16 step coarser
    EXPECT_GE(qmax, 126) << b;
    EXPECT_LE(qmax, 127) << b;
  }
}

// Every level, widths with a half chunk (in % 64 == 32), odd chunk counts and the 125M shapes'
// 768; row ranges leave the other outputs untouched; accumulate adds.
TEST(Q8Kernels, DotRowsEqualsDoubleLoopAtEveryLevel) {
  for (int64_t in : {32, 64, 96, 160, 256, 288, 480, 768, 3072}) {
    const Q8Weights w = random_q8(37, in, static_cast<uint64_t>(in));
    for (int64_t rows : {1, 3, 16}) {
      const auto x = normal(rows * in, static_cast<uint64_t>(rows * 100 + in));
      std::vector<int8_t> xq(x.size());
      std::vector<float> xs(x.size() / 32);
      quantize_q8(x.data(), rows, in, xq.data(), xs.data());
      std::vector<double> ref(static_cast<size_t>(rows * w.rows));
      q8_dot_ref(xq.data(), xs.data(), rows, w.view(), ref.data());
      for (Isa level : enabled_levels())
        for (bool acc : {false, true}) {
          std::vector<float> y(ref.size(), 2.5f);
          const int64_t o0 = 5, o1 = 30;
          q8_dot_rows(xq.data(), xs.data(), rows, w.view(), y.data(), w.rows, o0, o1, acc, level);
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t o = 0; o < w.rows; ++o) {
              const double got = y[r * w.rows + o];
              if (o < o0 || o >= o1) {
                ASSERT_EQ(got, 2.5) << "row outside the range was written";
                continue;
              }
              const double want = ref[r * w.rows + o] + (acc ? 2.5 : 0.0);
              ASSERT_NEAR(got, want, 2e-6 * (1 + std::fabs(want)))
                  << isa_name(level) << " in " << in << " rows " << rows << " at " << r << "," << o
                  << " (" << q8_dot_path_name(q8_dot_path(level)) << ")";
            }
        }
    }
  }
}

// Each output's bits do not depend on how the outputs were split (threads take row ranges; the
// kernels go four outputs at a time with a different path for the leftovers).
TEST(Q8Kernels, AnySplitOfTheOutputsGivesTheSameBitsAtEveryLevel) {
  for (int64_t in : {96, 768}) {
    const Q8Weights w = random_q8(37, in, 11);
    const int64_t rows = 2;
    const auto x = normal(rows * in, 12);
    std::vector<int8_t> xq(x.size());
    std::vector<float> xs(x.size() / 32);
    quantize_q8(x.data(), rows, in, xq.data(), xs.data());
    for (Isa level : enabled_levels()) {
      std::vector<float> whole(static_cast<size_t>(rows * w.rows)), parts(whole.size());
      q8_dot_rows(xq.data(), xs.data(), rows, w.view(), whole.data(), w.rows, 0, w.rows, false,
                  level);
      const int64_t cuts[] = {0, 1, 3, 4, 9, 10, 16, 33, 37};
      for (size_t k = 0; k + 1 < std::size(cuts); ++k)
        q8_dot_rows(xq.data(), xs.data(), rows, w.view(), parts.data(), w.rows, cuts[k],
                    cuts[k + 1], false, level);
      for (size_t i = 0; i < whole.size(); ++i)
        ASSERT_EQ(whole[i], parts[i]) << isa_name(level) << " in " << in << " at " << i;
    }
  }
}

// The integer sums are exact for every int8 weight (-128 too, which a file may hold) against
// x at +-127, the largest lane sums: scales 1, so the result is an integer a double holds.
TEST(Q8Kernels, ExtremeBytesGiveExactSumsAtEveryLevel) {
  const int64_t in = 288, out = 9;
  Q8Weights w{std::vector<int8_t>(static_cast<size_t>(out * in)),
              std::vector<float>(static_cast<size_t>(out * in / 32), 1.0f), out, in};
  std::vector<int8_t> xq(static_cast<size_t>(in));
  std::vector<float> xs(static_cast<size_t>(in / 32), 1.0f);
  const int8_t wv[] = {-128, 127, -127, -128, 0, 1};
  for (int64_t i = 0; i < out * in; ++i) w.q[i] = wv[(i * 7 + i / in) % 6];
  for (int64_t i = 0; i < in; ++i) xq[i] = (i % 5 == 2) ? int8_t{127} : int8_t{-127};
  for (int64_t o = 0; o < out; ++o)  // one row of all -128 against all -127 at the start
    if (o == 3)
      for (int64_t i = 0; i < in; ++i) w.q[o * in + i] = -128;
  std::vector<double> ref(static_cast<size_t>(out));
  q8_dot_ref(xq.data(), xs.data(), 1, w.view(), ref.data());
  for (Isa level : enabled_levels()) {
    std::vector<float> y(static_cast<size_t>(out));
    q8_dot_rows(xq.data(), xs.data(), 1, w.view(), y.data(), out, 0, out, false, level);
    for (int64_t o = 0; o < out; ++o) ASSERT_EQ(y[o], ref[o]) << isa_name(level) << " at " << o;
  }
}

// The kernel each level dispatches to, from the CPU's features.
TEST(Q8Kernels, DispatchFollowsTheCpuFeatures) {
  const CpuFeatures& f = cpu_features_detected();
  EXPECT_EQ(q8_dot_path(Isa::Scalar), Q8DotPath::Portable);
  if (isa_enabled(Isa::Avx2)) {
    EXPECT_EQ(q8_dot_path(Isa::Avx2), f.avx_vnni ? Q8DotPath::AvxVnni : Q8DotPath::Portable);
  }
  if (isa_enabled(Isa::Avx512)) {
    EXPECT_EQ(q8_dot_path(Isa::Avx512), f.avx512_vnni ? Q8DotPath::Avx512Vnni
                                        : f.avx_vnni  ? Q8DotPath::AvxVnni
                                                      : Q8DotPath::Portable);
  }
}

// The whole decoding product (quantize + kernel over threads) with the portable path forced,
// and the dispatched one: both equal the double loop on the quantized values.
TEST(Q8Kernels, ForcedScalarPathAndDispatchedPathAgree) {
  const Q8Weights w = random_q8(50, 96, 3);
  const int64_t rows = 4;
  const auto x = normal(rows * 96, 4);
  std::vector<int8_t> xq(x.size());
  std::vector<float> xs(x.size() / 32);
  quantize_q8(x.data(), rows, 96, xq.data(), xs.data());
  std::vector<double> ref(static_cast<size_t>(rows * 50));
  q8_dot_ref(xq.data(), xs.data(), rows, w.view(), ref.data());
  std::vector<float> a(ref.size()), b(ref.size());
  {
    ScopedIsa scalar(Isa::Scalar);
    EXPECT_FALSE(q8_vnni_path(active_isa()));
    matmul_xwt(x.data(), rows, w.view(), a.data());
  }
  matmul_xwt(x.data(), rows, w.view(), b.data());
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_NEAR(a[i], ref[i], 2e-6 * (1 + std::fabs(ref[i]))) << i;
    ASSERT_NEAR(b[i], ref[i], 2e-6 * (1 + std::fabs(ref[i]))) << i;
  }
  if (cpu_features_detected().avx512_vnni && isa_enabled(Isa::Avx512)) {
    EXPECT_TRUE(q8_vnni_path(active_isa()));
  }
}

// Prompts (more than kQ8GemvRows rows): fp32 x times the dequantized weights.
TEST(Q8Kernels, PromptPathEqualsDoubleLoopOnDequantizedWeights) {
  const Q8Weights w = random_q8(70, 160, 5);
  for (int64_t rows : {kQ8GemvRows + 1, int64_t{40}}) {
    const auto x = normal(rows * 160, static_cast<uint64_t>(rows));
    std::vector<double> ref(static_cast<size_t>(rows * 70));
    matmul_xwt_q8_ref(x.data(), rows, w.view(), ref.data());
    for (bool acc : {false, true}) {
      std::vector<float> y(ref.size(), 1.0f);
      matmul_xwt(x.data(), rows, w.view(), y.data(), acc);
      for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_NEAR(y[i], ref[i] + (acc ? 1.0 : 0.0), 1e-5 * (1 + std::fabs(ref[i]))) << i;
    }
  }
}

// Decoding quantizes x: its result stays within the activation rounding of the exact product.
TEST(Q8Kernels, DecodingErrorFromActivationRoundingIsSmall) {
  const Q8Weights w = random_q8(64, 768, 6);
  const auto x = normal(768, 9);
  std::vector<double> exact(64);
  matmul_xwt_q8_ref(x.data(), 1, w.view(), exact.data());
  std::vector<float> y(64);
  matmul_xwt(x.data(), 1, w.view(), y.data());
  double num = 0, den = 0;
  for (int i = 0; i < 64; ++i) {
    num += (y[i] - exact[i]) * (y[i] - exact[i]);
    den += exact[i] * exact[i];
  }
  EXPECT_LT(std::sqrt(num / den), 0.02);
}

TEST(Q8Kernels, GatherAndRowSlices) {
  const Q8Weights w = random_q8(20, 64, 8);
  const std::vector<int32_t> ids = {3, 0, 19, 3};
  std::vector<float> y(ids.size() * 64);
  gather_rows(ids.data(), 4, w.view(), y.data());
  for (size_t k = 0; k < ids.size(); ++k)
    for (int64_t i = 0; i < 64; ++i)
      ASSERT_EQ(y[k * 64 + i], w.s[ids[k] * 2 + i / 32] * static_cast<float>(w.q[ids[k] * 64 + i]));
  const int32_t bad = 20;
  EXPECT_NE(error_of([&] { gather_rows(&bad, 1, w.view(), y.data()); }).find("token id 20"),
            std::string::npos);
  // A slice of rows is the product with those rows.
  const auto x = normal(64, 10);
  std::vector<float> full(20), part(5);
  matmul_xwt(x.data(), 1, w.view(), full.data());
  matmul_xwt(x.data(), 1, w.view().row_slice(4, 5), part.data());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(part[i], full[4 + i]);
}
