// The fast recurrent paths of the SSMs against their plain reference paths: the vectorised
// steps (float pairs instead of std::complex, one-pass shift) and the structure-of-arrays
// prompt state (all modes at once) must compute what the obvious loops compute.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <vector>

#include "core/rng.h"
#include "ssm/s4d.h"
#include "ssm/shift.h"

using namespace hippo;

namespace {

using cf = std::complex<float>;

std::vector<cf> random_state(Rng& rng, int M) {
  std::vector<cf> x(static_cast<size_t>(M));
  for (auto& v : x) v = cf(static_cast<float>(rng.normal()), static_cast<float>(rng.normal()));
  return x;
}

double max_abs_diff(const std::vector<cf>& a, const std::vector<cf>& b, double* scale) {
  double e = 0, s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    e = std::max(e, static_cast<double>(std::abs(a[i] - b[i])));
    s = std::max(s, static_cast<double>(std::abs(b[i])));
  }
  *scale = s;
  return e;
}

// Random dynamics beyond the init: log_dt up to 0 (dA far from 1) and random complex B.
void randomize(S4DKernel& k, Rng& rng) {
  k.init(rng, S4DInit::Lin);
  for (int h = 0; h < k.H(); ++h) k.log_dt.value[h] = static_cast<float>(-4.0 * rng.uniform());
  for (int64_t i = 0; i < k.B.value.numel(); ++i) k.B.value[i] = static_cast<float>(rng.normal());
  for (int64_t i = 0; i < k.inv_A_real.value.numel(); ++i)
    k.inv_A_real.value[i] = static_cast<float>(rng.normal() * 0.5 - 1.0);
  k.discretize();
}

}  // namespace

// Mode counts below, at and above the fast path's block of 32 (M = 35 leaves padding lanes).
TEST(S4DFastPaths, AdvanceStateEqualsReference) {
  Rng rng(41);
  for (auto disc : {Discretization::Bilinear, Discretization::ZOH})
    for (int N : {2, 8, 64, 70}) {
      const int H = 3;
      S4DKernel k(H, N, disc);
      randomize(k, rng);
      for (int L : {0, 1, 37, 600}) {
        std::vector<float> u(static_cast<size_t>(L));
        for (auto& v : u) v = static_cast<float>(rng.normal());
        for (int h = 0; h < H; ++h) {
          const auto x0 = random_state(rng, k.M());
          auto fast = x0, ref = x0;
          k.advance_state(h, u.data(), L, fast.data());
          k.advance_state_reference(h, u.data(), L, ref.data());
          double scale = 0;
          const double e = max_abs_diff(fast, ref, &scale);
          EXPECT_LE(e, 1e-6 * std::max(scale, 1.0)) << "N=" << N << " L=" << L << " h=" << h;
        }
      }
    }
}

TEST(S4DFastPaths, StepEqualsReference) {
  Rng rng(42);
  for (int N : {2, 16, 32, 64, 70, 128}) {
    const int H = 2, T = 40;
    S4DKernel k(H, N);
    randomize(k, rng);
    for (int h = 0; h < H; ++h) {
      auto fast = random_state(rng, k.M()), ref = fast;
      std::vector<float> yf, yr;
      for (int t = 0; t < T; ++t) {
        const float u = static_cast<float>(rng.normal());
        yf.push_back(k.step(h, fast.data(), u));
        yr.push_back(k.step_reference(h, ref.data(), u));
      }
      double ymax = 0, ye = 0, scale = 0;
      for (int t = 0; t < T; ++t) {
        ymax = std::max(ymax, static_cast<double>(std::fabs(yr[t])));
        ye = std::max(ye, static_cast<double>(std::fabs(yf[t] - yr[t])));
      }
      EXPECT_LE(ye, 1e-5 * ymax) << "N=" << N;
      EXPECT_LE(max_abs_diff(fast, ref, &scale), 1e-5 * std::max(scale, 1.0)) << "N=" << N;
    }
  }
}

TEST(ShiftFastPaths, StepEqualsReference) {
  Rng rng(43);
  for (int N : {1, 2, 8, 16, 32, 64, 65}) {
    const int H = 2, T = 3 * N + 5;
    ShiftKernel k(H, N);
    for (int64_t i = 0; i < k.B.value.numel(); ++i) {
      k.B.value[i] = static_cast<float>(rng.normal());
      k.C.value[i] = static_cast<float>(rng.normal());
    }
    for (int h = 0; h < H; ++h) {
      std::vector<float> fast(static_cast<size_t>(N)), ref;
      for (auto& v : fast) v = static_cast<float>(rng.normal());
      ref = fast;
      for (int t = 0; t < T; ++t) {
        const float u = static_cast<float>(rng.normal());
        const float yf = k.step(h, fast.data(), u), yr = k.step_reference(h, ref.data(), u);
        // y sums N products C_n x_n: rounding scales with the size of the terms, not of y
        // (cancellation leaves y small; -O1 and -O3 sum in different orders).
        double terms = 0;
        for (int n = 0; n < N; ++n) terms += std::fabs(k.C.value[h * N + n] * ref[n]);
        EXPECT_NEAR(yf, yr, 1e-6 * (1 + terms)) << "N=" << N << " t=" << t;
      }
      for (int n = 0; n < N; ++n) EXPECT_NEAR(fast[n], ref[n], 1e-5 * (1 + std::fabs(ref[n])));
    }
  }
}

// The chunked kernel (float sums over modes, double recurrences for the powers) against the
// running power in double, for lengths shorter than, equal to and past one chunk, on
// dynamics from fast-decaying to nearly undamped.
TEST(S4DFastPaths, KernelEqualsReference) {
  Rng rng(44);
  for (auto disc : {Discretization::Bilinear, Discretization::ZOH})
    for (int N : {2, 16, 64, 70})
      for (int L : {1, 63, 64, 65, 1000}) {
        const int H = 3;
        S4DKernel k(H, N, disc);
        randomize(k, rng);
        k.log_dt.value[0] = -6.9f;  // dt = 0.001: |dA| close to 1, slow decay
        k.inv_A_real.value[0] = -5.0f;
        std::vector<float> fast(static_cast<size_t>(H) * L), ref(fast.size());
        k.kernel(fast.data(), L);
        k.kernel_reference(ref.data(), L);
        for (int h = 0; h < H; ++h) {
          double e = 0, m = 0;
          for (int l = 0; l < L; ++l) {
            const size_t i = static_cast<size_t>(h) * L + l;
            e = std::max(e, static_cast<double>(std::fabs(fast[i] - ref[i])));
            m = std::max(m, static_cast<double>(std::fabs(ref[i])));
          }
          EXPECT_LE(e, 2e-5 * m) << "N=" << N << " L=" << L << " h=" << h;
        }
      }
}
