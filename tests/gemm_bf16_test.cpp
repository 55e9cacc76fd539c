// bf16-weight matmul y = x W^T: every fast path (each instruction path forced, the blocked
// large-rows path, the automatic choice) against a double-precision loop.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/bf16.h"
#include "core/rng.h"
#include "kernels/gemm_bf16.h"

using namespace hippo;

namespace {

struct Case {
  std::vector<float> x;
  std::vector<uint16_t> W;
  std::vector<double> scale;  // per output: sum_i |x_i W_oi|, the size fp32 rounding scales with
};

Case make_case(int64_t rows, int64_t in, int64_t out, uint64_t seed) {
  Rng rng(seed);
  Case c;
  c.x.resize(rows * in);
  c.W.resize(out * in);
  for (auto& v : c.x) v = static_cast<float>(rng.normal());
  for (auto& w : c.W) w = f32_to_bf16(static_cast<float>(rng.normal() * 0.1));
  c.scale.assign(rows * out, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i)
        c.scale[r * out + o] += std::fabs(c.x[r * in + i] * bf16_to_f32(c.W[o * in + i]));
  return c;
}

// fp32 accumulation (and the two-part bf16 split of x on the VDPBF16PS path, 2^-17) keeps the
// error of each output far below 2e-5 of sum |x W|; a wrong element, mask or tail is O(1).
// With accumulate the scale includes |y0|, the value added to.
void expect_close(const std::vector<float>& y, const std::vector<float>& ref, const Case& c,
                  const std::vector<float>& y0, const std::string& what) {
  double worst = 0;
  for (size_t i = 0; i < y.size(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(y[i]) - ref[i]) /
                                (c.scale[i] + std::fabs(y0[i]) + 1e-30));
  EXPECT_LT(worst, 2e-5) << what;
}

const Isa kIsas[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16};

}  // namespace

TEST(GemmBf16, EveryPathMatchesTheReference) {
  int checked = 0;
  for (int64_t rows : {1, 2, 3, 4, 5, 8, 9, 16, 17, 40})
    for (int64_t in : {1, 31, 32, 33, 100, 768})
      for (int64_t out : {1, 7, 8, 9, 50}) {
        const Case c = make_case(rows, in, out, 1000 * rows + 10 * in + out);
        for (bool acc : {false, true}) {
          std::vector<float> y0(rows * out);
          for (size_t i = 0; i < y0.size(); ++i) y0[i] = acc ? 0.25f * static_cast<float>(i % 7) : 0.0f;
          std::vector<float> ref = y0;
          matmul_xwt_bf16_ref(c.x.data(), c.W.data(), ref.data(), rows, in, out, acc);
          const std::string shape = "rows " + std::to_string(rows) + " in " + std::to_string(in) +
                                    " out " + std::to_string(out) + (acc ? " accumulate" : "");
          for (Isa isa : kIsas) {
            if (!isa_enabled(isa)) continue;
            std::vector<float> y = y0;
            if (!acc) std::fill(y.begin(), y.end(), NAN);  // must be overwritten
            matmul_xwt_bf16_gemv(c.x.data(), c.W.data(), y.data(), rows, in, out, acc, isa);
            expect_close(y, ref, c, y0, std::string(isa_name(isa)) + " " + shape);
            ++checked;
          }
          std::vector<float> y = y0;
          if (!acc) std::fill(y.begin(), y.end(), NAN);
          matmul_xwt_bf16_blocked(c.x.data(), c.W.data(), y.data(), rows, in, out, acc);
          expect_close(y, ref, c, y0, "blocked " + shape);
          y = y0;
          matmul_xwt_bf16(c.x.data(), c.W.data(), y.data(), rows, in, out, acc);
          expect_close(y, ref, c, y0, "matmul_xwt_bf16 " + shape);
        }
      }
  EXPECT_GT(checked, 0);
  std::printf("  paths on this CPU: scalar%s%s\n", isa_enabled(Isa::Avx512) ? ", avx512" : "",
              isa_enabled(Isa::Avx512Bf16) ? ", avx512_bf16" : "");
}

// Large enough that the OpenMP split over output rows and the multi-block widening both run.
TEST(GemmBf16, LargeShapesMatchTheReference) {
  const int64_t in = 1000, out = 1300;
  for (int64_t rows : {1, 3, 16, 33}) {
    const Case c = make_case(rows, in, out, 77 + rows);
    std::vector<float> ref(rows * out), y(rows * out), zero(rows * out, 0.0f);
    matmul_xwt_bf16_ref(c.x.data(), c.W.data(), ref.data(), rows, in, out);
    for (Isa isa : kIsas) {
      if (!isa_enabled(isa) || (isa <= Isa::Avx2 && rows > 3)) continue;
      matmul_xwt_bf16_gemv(c.x.data(), c.W.data(), y.data(), rows, in, out, false, isa);
      expect_close(y, ref, c, zero, std::string(isa_name(isa)) + " rows " + std::to_string(rows));
    }
    matmul_xwt_bf16_blocked(c.x.data(), c.W.data(), y.data(), rows, in, out, false);
    expect_close(y, ref, c, zero, "blocked rows " + std::to_string(rows));
  }
}

TEST(GemmBf16, RoundingIsToNearestEven) {
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie up to even
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(-2.0f), 0xc000);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(INFINITY)), INFINITY);
}

// The fast mode: x rounded to bf16, VDPBF16PS. Its reference is the double loop on the rounded
// x (so the test sees every element, mask and tail); the mode switch must route decoding's
// products there and leave prompts exact.
TEST(GemmBf16, RoundedActivationsMatchTheReferenceOnRoundedX) {
  if (!isa_enabled(Isa::Avx512Bf16)) GTEST_SKIP() << "no AVX512_BF16 on this CPU";
  for (int64_t rows : {1, 2, 3, 5, 8, 16})
    for (int64_t in : {1, 31, 32, 33, 100, 3000})
      for (int64_t out : {1, 9, 50}) {
        Case c = make_case(rows, in, out, 7000 * rows + 10 * in + out);
        std::vector<float> xr(c.x.size());
        for (size_t i = 0; i < xr.size(); ++i) xr[i] = bf16_to_f32(f32_to_bf16(c.x[i]));
        for (bool acc : {false, true}) {
          std::vector<float> y0(rows * out);
          Rng rng(static_cast<uint64_t>(rows + in + out));
          for (auto& v : y0) v = acc ? static_cast<float>(rng.normal()) : 0.0f;
          std::vector<float> y = y0, ref = y0;
          matmul_xwt_bf16_rounded_x(c.x.data(), c.W.data(), y.data(), rows, in, out, acc);
          matmul_xwt_bf16_ref(xr.data(), c.W.data(), ref.data(), rows, in, out, acc);
          expect_close(y, ref, c, y0,
                       "rows=" + std::to_string(rows) + " in=" + std::to_string(in) +
                           " out=" + std::to_string(out) + " acc=" + std::to_string(acc));
        }
      }
}

TEST(GemmBf16, ActivationModeRoutesDecodingOnly) {
  if (!isa_enabled(Isa::Avx512Bf16)) GTEST_SKIP() << "no AVX512_BF16 on this CPU";
  const int64_t in = 300, out = 70;
  for (int64_t rows : {8, 40}) {
    const Case c = make_case(rows, in, out, 99 + rows);
    std::vector<float> exact(rows * out), fast(rows * out), direct(rows * out);
    matmul_xwt_bf16(c.x.data(), c.W.data(), exact.data(), rows, in, out);
    set_bf16_activations(Bf16Activations::RoundedToBf16);
    matmul_xwt_bf16(c.x.data(), c.W.data(), fast.data(), rows, in, out);
    set_bf16_activations(Bf16Activations::Exact);
    if (rows <= kBf16GemvRows) {
      matmul_xwt_bf16_rounded_x(c.x.data(), c.W.data(), direct.data(), rows, in, out, false);
      EXPECT_EQ(fast, direct) << "decoding rows must take the rounded path";
      EXPECT_NE(fast, exact) << "rounding x must change the result";
    } else {
      EXPECT_EQ(fast, exact) << "prompts stay exact";
    }
  }
}
