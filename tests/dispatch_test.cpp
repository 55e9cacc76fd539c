// Run-time instruction-set dispatch (core/cpu_features.h): every level this CPU has is forced
// through the override, and each dispatched kernel's result at that level is held to the
// kernel's independent reference (the plain loop, the double-precision triple loop, the FFTW-free
// direct convolution), so a path that only runs on some CPUs is tested wherever the CPU has it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/rng.h"
#include "core/bf16.h"
#include "kernels/causal_conv_direct.h"
#include "kernels/flashconv/flashconv.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/gemm_small.h"
#include "kernels/gelu.h"
#include "ssm/s4d.h"
#include "ssm/shift.h"
#include "test_util.h"

namespace hippo {
namespace {

using test_util::error_of;

const Isa kLevels[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16};

// The levels this CPU has, lowest first.
std::vector<Isa> levels() {
  std::vector<Isa> r;
  for (Isa l : kLevels)
    if (l <= detected_isa()) r.push_back(l);
  return r;
}

std::vector<float> randn(size_t n, Rng& rng) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.normal());
  return v;
}

// max |a - b| / (scale + |b|), the scale being the typical size of the terms summed.
double worst_err(const std::vector<float>& a, const std::vector<float>& b, double scale) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]) / (scale + std::fabs(b[i])));
  return worst;
}

}  // namespace

TEST(Dispatch, ProbeAndOverride) {
  const CpuFeatures& f = cpu_features_detected();
  // The level follows from the features (a level needs every feature it names).
  EXPECT_EQ(detected_isa() >= Isa::Avx2, f.avx2 && f.fma);
  if (f.avx2 && f.fma) {
    EXPECT_EQ(detected_isa() >= Isa::Avx512, f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl);
  }
  if (detected_isa() >= Isa::Avx512) {
    EXPECT_EQ(detected_isa() == Isa::Avx512Bf16, f.avx512_bf16);
  }
  EXPECT_NE(cpu_features_summary().find(std::string("detected ") + isa_name(detected_isa())),
            std::string::npos)
      << cpu_features_summary();
  std::printf("  %s\n", cpu_features_summary().c_str());
  for (Isa l : kLevels) {
    EXPECT_EQ(parse_isa(isa_name(l)), l);
    ScopedIsa scoped(l);
    // Capped at what the CPU has.
    EXPECT_EQ(active_isa(), l <= detected_isa() ? l : detected_isa());
  }
  EXPECT_FALSE(parse_isa("avx1024").has_value());
  {
    ScopedIsa outer(Isa::Avx2);
    { ScopedIsa inner(Isa::Scalar); }
    EXPECT_EQ(active_isa(), std::min(Isa::Avx2, detected_isa())) << "ScopedIsa restores the cap";
  }
}

TEST(Dispatch, EnvironmentSetsTheCap) {
  const char* outer = std::getenv("HIPPO_ISA");  // the suite may run under a cap: restore it
  const std::string saved = outer ? outer : "";
  setenv("HIPPO_ISA", "scalar", 1);
  clear_isa_override();
  EXPECT_EQ(active_isa(), Isa::Scalar);
  EXPECT_FALSE(small_rows_kernel_available());
  setenv("HIPPO_ISA", "sse9", 1);
  EXPECT_NE(error_of([] { clear_isa_override(); }).find("HIPPO_ISA='sse9'"), std::string::npos);
  unsetenv("HIPPO_ISA");
  clear_isa_override();
  EXPECT_EQ(active_isa(), detected_isa());
  if (!saved.empty()) setenv("HIPPO_ISA", saved.c_str(), 1);
  clear_isa_override();
}

TEST(Dispatch, ShiftStepEveryLevelMatchesTheReference) {
  Rng rng(1);
  for (int N : {1, 5, 16, 48, 64}) {  // multiples of 16 take the AVX-512 path
    const int H = 3;
    ShiftKernel k(H, N);
    for (int64_t i = 0; i < k.B.value.numel(); ++i) {
      k.B.value[i] = static_cast<float>(rng.normal());
      k.C.value[i] = static_cast<float>(rng.normal());
    }
    for (Isa level : levels()) {
      ScopedIsa scoped(level);
      std::vector<float> s(N, 0.0f), s_ref(N, 0.0f);
      std::vector<float> y, y_ref;
      for (int t = 0; t < 40; ++t) {  // past N steps: the shift reaches the last slot
        const int h = t % H;
        const float u = static_cast<float>(rng.normal());
        y.push_back(k.step(h, s.data(), u));
        y_ref.push_back(k.step_reference(h, s_ref.data(), u));
      }
      EXPECT_LT(worst_err(y, y_ref, std::sqrt(N) * 2.0), 1e-5) << isa_name(level) << " N=" << N;
      EXPECT_LT(worst_err(s, s_ref, 1.0), 1e-5) << isa_name(level) << " N=" << N;
    }
  }
}

// The ring form of the shift SSM (ssm/shift.h): inputs kept in a ring (N, H), outputs as
// sum_j K[j] u_{t-j} over channel ranges that are not whole vectors, against shift-and-update
// (step_reference) from the zero state, past N steps; and the state s the ring stands for
// (ShiftKernel::ring_state) against the reference's s.
TEST(Dispatch, ShiftRingStepEveryLevelMatchesTheReference) {
  Rng rng(3);
  for (int N : {1, 5, 16, 64}) {
    const int H = 37, T = 2 * N + 3;
    ShiftKernel k(H, N);
    for (int64_t i = 0; i < k.B.value.numel(); ++i) {
      k.B.value[i] = static_cast<float>(rng.normal());
      k.C.value[i] = static_cast<float>(rng.normal());
    }
    std::vector<float> D(H);
    for (auto& v : D) v = static_cast<float>(rng.normal());
    const auto dyn = k.step_params();
    for (Isa level : levels()) {
      ScopedIsa scoped(level);
      std::vector<float> s_ref(static_cast<size_t>(H) * N, 0.0f), ring(s_ref.size(), 0.0f);
      std::vector<float> y, y_ref, y_t(H);
      int pos = 0;
      for (int t = 0; t < T; ++t) {
        pos = (pos + N - 1) % N;
        for (int h = 0; h < H; ++h) ring[static_cast<size_t>(pos) * H + h] = static_cast<float>(rng.normal());
        // Two ranges, the first 20 channels (one vector and a part) and the rest.
        shift_ring_step(dyn->KT.data(), ring.data(), pos, H, N, D.data(), y_t.data(), 0, 20);
        shift_ring_step(dyn->KT.data(), ring.data(), pos, H, N, D.data(), y_t.data(), 20, H);
        for (int h = 0; h < H; ++h) {
          const float u = ring[static_cast<size_t>(pos) * H + h];
          y.push_back(y_t[h]);
          y_ref.push_back(k.step_reference(h, s_ref.data() + static_cast<size_t>(h) * N, u) + D[h] * u);
        }
      }
      EXPECT_LT(worst_err(y, y_ref, std::sqrt(N) * 4.0), 1e-5) << isa_name(level) << " N=" << N;
      std::vector<float> s(s_ref.size());
      for (int h = 0; h < H; ++h)
        ShiftKernel::ring_state(dyn->B.data(), ring.data(), pos, H, N, h, s.data() + static_cast<size_t>(h) * N);
      EXPECT_LT(worst_err(s, s_ref, std::sqrt(N) * 2.0), 1e-5) << isa_name(level) << " N=" << N;
    }
  }
}

TEST(Dispatch, S4DStepEveryLevelMatchesTheReference) {
  Rng rng(2);
  for (int N : {2, 10, 16, 32, 64}) {  // M a multiple of 8 takes the AVX-512 path
    const int H = 3, M = N / 2;
    S4DKernel k(H, N);
    k.init(rng);
    k.discretize();
    for (Isa level : levels()) {
      ScopedIsa scoped(level);
      std::vector<std::complex<float>> x(M), x_ref(M);
      std::vector<float> y, y_ref;
      for (int t = 0; t < 30; ++t) {
        const int h = t % H;
        const float u = static_cast<float>(rng.normal());
        y.push_back(k.step(h, x.data(), u));
        y_ref.push_back(k.step_reference(h, x_ref.data(), u));
      }
      EXPECT_LT(worst_err(y, y_ref, 4.0 * M), 2e-5) << isa_name(level) << " N=" << N;
      for (int n = 0; n < M; ++n)
        EXPECT_LT(std::abs(x[n] - x_ref[n]), 1e-5 * (1 + std::abs(x_ref[n])))
            << isa_name(level) << " N=" << N << " mode " << n;
    }
  }
}

// S4D's prompt-state recurrence (advance_state) against the one-mode-at-a-time loop in double.
TEST(Dispatch, S4DAdvanceStateEveryLevelMatchesTheReference) {
  Rng rng(7);
  const int H = 2, N = 80, L = 50;  // M = 40: a full block of 32 modes and a partial one
  S4DKernel k(H, N);
  k.init(rng);
  k.discretize();
  const std::vector<float> u = randn(L, rng);
  for (Isa level : levels()) {
    ScopedIsa scoped(level);
    std::vector<std::complex<float>> x(N / 2, {0.5f, -0.25f}), x_ref = x;
    k.advance_state(1, u.data(), L, x.data());
    k.advance_state_reference(1, u.data(), L, x_ref.data());
    for (int n = 0; n < N / 2; ++n)
      EXPECT_LT(std::abs(x[n] - x_ref[n]), 1e-5 * (1 + std::abs(x_ref[n])))
          << isa_name(level) << " mode " << n;
  }
}

// GELU (tanh form) against the formula in double with std::tanh, forward and backward.
TEST(Dispatch, GeluEveryLevelMatchesTheReference) {
  Rng rng(8);
  const int64_t n = 1000;
  std::vector<float> x = randn(n, rng), dy = randn(n, rng);
  for (float& v : x) v *= 4.0f;
  std::vector<float> y_ref(n), dx_ref(n);
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i], c = std::sqrt(2.0 / M_PI), a = 0.044715;
    const double t = std::tanh(c * (v + a * v * v * v));
    y_ref[i] = static_cast<float>(0.5 * v * (1 + t));
    dx_ref[i] = static_cast<float>(dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * c * (1 + 3 * a * v * v)));
  }
  for (Isa level : levels()) {
    ScopedIsa scoped(level);
    std::vector<float> y(n), dx(n);
    gelu_forward(x.data(), y.data(), n);
    gelu_backward(x.data(), dy.data(), dx.data(), n);
    EXPECT_LT(worst_err(y, y_ref, 1.0), 2e-6) << isa_name(level);
    EXPECT_LT(worst_err(dx, dx_ref, 1.0), 1e-5) << isa_name(level);
  }
}

// The short direct convolution (the shift SSM's prefill) against the per-output sum.
TEST(Dispatch, CausalConvDirectEveryLevelMatchesTheReference) {
  Rng rng(9);
  const int B = 2, H = 3, L = 37, N = 8;
  const std::vector<float> u = randn(static_cast<size_t>(B) * H * L, rng),
                           K = randn(static_cast<size_t>(H) * N, rng);
  std::vector<float> ref(u.size());
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int t = 0; t < L; ++t) {
        double acc = 0;
        for (int j = 0; j < N && j <= t; ++j)
          acc += static_cast<double>(K[h * N + j]) * u[(b * H + h) * L + t - j];
        ref[(b * H + h) * L + t] = static_cast<float>(acc);
      }
  for (Isa level : levels()) {
    ScopedIsa scoped(level);
    std::vector<float> y(u.size());
    causal_conv_direct(u.data(), K.data(), y.data(), B, H, L, N);
    EXPECT_LT(worst_err(y, ref, 3.0), 1e-6) << isa_name(level);
  }
}

// gemm() at each level: the small-rows kernel from Avx512 up, oneDNN below.
TEST(Dispatch, GemmSmallRowsEveryLevelMatchesTheReference) {
  Rng rng(3);
  for (Isa level : levels()) {
    ScopedIsa scoped(level);
    EXPECT_EQ(small_rows_kernel_available(), level >= Isa::Avx512);
    for (int64_t M : {1, 3, 8, 16})
      for (int64_t N : {1, 17, 100})
        for (int64_t K : {1, 31, 200}) {
          const std::vector<float> A = randn(M * K, rng), B = randn(N * K, rng);
          std::vector<float> C = randn(M * N, rng), C_ref = C;
          gemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.5f, C.data(), N);
          gemm_ref(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.5f, C_ref.data(), N);
          EXPECT_LT(worst_err(C, C_ref, std::sqrt(static_cast<double>(K))), 1e-5)
              << isa_name(level) << " M=" << M << " N=" << N << " K=" << K;
        }
  }
}

// matmul_xwt_bf16 (the decoding rows) at each level, and each level's path named directly.
TEST(Dispatch, Bf16MatmulEveryLevelMatchesTheReference) {
  Rng rng(4);
  for (Isa level : levels()) {
    ScopedIsa scoped(level);
    for (int64_t rows : {1, 4, 16})
      for (int64_t in : {7, 64, 300})
        for (int64_t out : {1, 33}) {
          const std::vector<float> x = randn(rows * in, rng), w = randn(out * in, rng);
          std::vector<uint16_t> W(w.size());
          f32_to_bf16(w.data(), W.data(), static_cast<int64_t>(w.size()));
          std::vector<float> y(rows * out), y_at(rows * out), ref(rows * out);
          matmul_xwt_bf16(x.data(), W.data(), y.data(), rows, in, out);
          matmul_xwt_bf16_gemv(x.data(), W.data(), y_at.data(), rows, in, out, false, level);
          matmul_xwt_bf16_ref(x.data(), W.data(), ref.data(), rows, in, out);
          const std::string where = std::string(isa_name(level)) + " rows " +
                                    std::to_string(rows) + " in " + std::to_string(in);
          EXPECT_LT(worst_err(y, ref, std::sqrt(static_cast<double>(in))), 1e-5) << where;
          EXPECT_EQ(y, y_at) << where << ": matmul_xwt_bf16 must take the level's path";
        }
    // A level above the cap is refused rather than run.
    for (Isa above : kLevels) {
      if (above <= level) continue;
      EXPECT_NE(error_of([&] {
                    float x = 1, y;
                    uint16_t w = 0x3f80;
                    matmul_xwt_bf16_gemv(&x, &w, &y, 1, 1, 1, false, above);
                  }).find("not enabled"),
                  std::string::npos);
    }
  }
}

// The rounded-activation mode is an argument; below Avx512Bf16 it falls back to the exact path.
TEST(Dispatch, Bf16RoundedActivationsFollowTheLevel) {
  Rng rng(6);
  const int64_t rows = 4, in = 100, out = 20;
  const std::vector<float> x = randn(rows * in, rng), w = randn(out * in, rng);
  std::vector<uint16_t> W(w.size());
  f32_to_bf16(w.data(), W.data(), static_cast<int64_t>(w.size()));
  for (Isa level : levels()) {
    ScopedIsa scoped(level);
    std::vector<float> y(rows * out), expect(rows * out);
    matmul_xwt_bf16(x.data(), W.data(), y.data(), rows, in, out, false,
                    Bf16Activations::RoundedToBf16);
    if (level >= Isa::Avx512Bf16)
      matmul_xwt_bf16_rounded_x(x.data(), W.data(), expect.data(), rows, in, out, false);
    else
      matmul_xwt_bf16_gemv(x.data(), W.data(), expect.data(), rows, in, out, false, level);
    EXPECT_EQ(y, expect) << isa_name(level);
  }
}

// The FlashConv engine of each level against the direct convolution.
TEST(Dispatch, FlashConvEveryLevelMatchesTheReference) {
  Rng rng(5);
  const int B = 2, H = 19, L = 300;  // partial lane groups for 8 and 16 lanes
  const size_t n = static_cast<size_t>(B) * H * L;
  const std::vector<float> q = randn(n, rng), k = randn(n, rng), v = randn(n, rng);
  std::vector<float> K = randn(static_cast<size_t>(H) * L, rng);
  for (int h = 0; h < H; ++h)
    for (int l = 0; l < L; ++l) K[static_cast<size_t>(h) * L + l] *= std::exp(-l / 20.0f);
  const std::vector<float> D = randn(H, rng);
  std::vector<float> ref(n);
  flashconv_ref_h3_fwd(q.data(), k.data(), v.data(), K.data(), D.data(), ref.data(), B, H, L);
  for (Isa level : levels()) {
    ScopedIsa scoped(level);
    EXPECT_EQ(flashconv_engine_isa(active_isa()), level >= Isa::Avx512 ? Isa::Avx512 : level);
    std::vector<float> y(n);
    flashconv_h3_fwd(q.data(), k.data(), v.data(), K.data(), D.data(), y.data(), B, H, L);
    EXPECT_LT(worst_err(y, ref, 1.0), 1e-4) << isa_name(level);
  }
}

}  // namespace hippo
