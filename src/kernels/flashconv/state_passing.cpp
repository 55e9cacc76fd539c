// State passing (spec §7): the diagonal SSM's convolution over any length, chunk by chunk.
//
// Within a chunk of T steps the output is the FFT convolution with K[:T] (the fused engine,
// run on the chunk in place in the full-length tensors); what earlier chunks contribute comes
// through the SSM state, kept per channel as x~_n = C_n x_n (so only dA and C dB are needed):
//   y_c[j] += 2 Re(sum_n dA_n^(j+1) x~_n),   x~ <- dA^T x~ + sum_k dA^(T-1-k) (C dB)_n u_c[k].
// The state pass runs in double precision (O(L M) per channel); the result equals the
// unchunked convolution up to fp32 rounding.
#include <algorithm>
#include <vector>

#include "core/buffer.h"
#include "core/error.h"
#include "kernels/flashconv/fc_internal.h"
#include "kernels/flashconv/flashconv.h"

namespace hippo {

namespace {

void check_ssm(const DiagSsmDiscrete& ssm) {
  HIPPO_CHECK(ssm.M >= 1, "diag SSM: M = ", ssm.M, " must be positive");
  HIPPO_CHECK(ssm.dA_re && ssm.dA_im, "diag SSM: 'dA_re'/'dA_im' is null");
  HIPPO_CHECK(ssm.CB_re && ssm.CB_im, "diag SSM: 'CB_re'/'CB_im' is null");
}

}  // namespace

void diag_ssm_kernel(const DiagSsmDiscrete& ssm, int H, int L, float* K) {
  check_ssm(ssm);
  HIPPO_CHECK(H >= 1 && L >= 1, "diag_ssm_kernel: H = ", H, ", L = ", L, " must be positive");
  const int M = ssm.M;
#pragma omp parallel for schedule(static)
  for (int h = 0; h < H; ++h) {
    std::vector<double> pr(M), pi(M), ar(M), ai(M);
    for (int n = 0; n < M; ++n) {
      size_t i = static_cast<size_t>(h) * M + n;
      pr[n] = ssm.CB_re[i], pi[n] = ssm.CB_im[i], ar[n] = ssm.dA_re[i], ai[n] = ssm.dA_im[i];
    }
    for (int l = 0; l < L; ++l) {
      double acc = 0;
      for (int n = 0; n < M; ++n) {
        acc += pr[n];
        double r = pr[n] * ar[n] - pi[n] * ai[n];
        pi[n] = pr[n] * ai[n] + pi[n] * ar[n];
        pr[n] = r;
      }
      K[static_cast<size_t>(h) * L + l] = static_cast<float>(2.0 * acc);
    }
  }
}

void flashconv_ssm_fwd(const float* u, const DiagSsmDiscrete& ssm, const float* D, float* y, int B,
                       int H, int L, int T) {
  check_ssm(ssm);
  HIPPO_CHECK(u && y, "flashconv_ssm_fwd: 'u' or 'y' is null");
  HIPPO_CHECK(B >= 1 && H >= 1 && L >= 1, "flashconv_ssm_fwd: shape (B, H, L) = (", B, ", ", H,
              ", ", L, ") must be positive");
  HIPPO_CHECK(T >= 1, "flashconv_ssm_fwd: chunk length T = ", T, " must be positive");
  T = std::min(T, L);
  const int M = ssm.M;
  static thread_local Buffer kbuf;
  float* Kc = kbuf.get(static_cast<size_t>(H) * T);
  diag_ssm_kernel(ssm, H, T, Kc);

  // 1. Every chunk's own convolution (independent of the state).
  for (int t0 = 0; t0 < L; t0 += T) {
    fc::Args a;
    a.op = fc::Op::Fwd;
    a.u = u + t0, a.y = y + t0, a.K = Kc, a.D = D;
    a.B = B, a.H = H, a.L = std::min(T, L - t0), a.ld = L, a.kld = T;
    fc::run(a);
  }
  if (L <= T) return;

  // 2. The state carried across chunk boundaries, per (batch, channel), in double precision.
  //    Both state terms are evaluated in blocks of 16 steps so that no loop carries a serial
  //    dependency from one step to the next: with j = 16a + r,
  //      dA^(j+1) x~ = (dA^(16a+1) x~) dA^r                 (contribution to y_c[j])
  //      sum_k dA^(Tc-1-k) u[k] = Horner over blocks of Q(a) = sum_r dA^(15-r) u[16a + r]
  //    (state update), with the powers dA^r, r < 16, and dA^16 computed once per channel.
#pragma omp parallel for schedule(dynamic, 1)
  for (int bh = 0; bh < B * H; ++bh) {
    const int h = bh % H;
    const float* ur = u + static_cast<size_t>(bh) * L;
    float* yr = y + static_cast<size_t>(bh) * L;
    // Modes padded with zeros to a multiple of 8 (whole vectors).
    const int Mp = (M + 7) / 8 * 8;
    constexpr int R = 16;
    std::vector<double> ar(Mp, 0.0), ai(Mp, 0.0), cr(Mp, 0.0), ci(Mp, 0.0), xr(Mp, 0.0),
        xi(Mp, 0.0), vr(Mp), vi(Mp), qr(Mp), qi(Mp), a16r(Mp), a16i(Mp);
    std::vector<double> Pr(R * Mp), Pi(R * Mp);    // [r][n] = dA_n^r
    std::vector<double> Ptr(Mp * R), Pti(Mp * R);  // [n][r] = dA_n^r
    for (int n = 0; n < M; ++n) {
      size_t i = static_cast<size_t>(h) * M + n;
      ar[n] = ssm.dA_re[i], ai[n] = ssm.dA_im[i], cr[n] = ssm.CB_re[i], ci[n] = ssm.CB_im[i];
    }
    for (int n = 0; n < Mp; ++n) {
      double pr = 1, pi = 0;
      for (int r = 0; r < R; ++r) {
        Pr[r * Mp + n] = Ptr[n * R + r] = pr;
        Pi[r * Mp + n] = Pti[n * R + r] = pi;
        double t = pr * ar[n] - pi * ai[n];
        pi = pr * ai[n] + pi * ar[n];
        pr = t;
      }
      a16r[n] = pr, a16i[n] = pi;  // dA^16
    }
    for (int t0 = 0; t0 < L; t0 += T) {
      const int Tc = std::min(T, L - t0);
      if (t0 > 0) {  // contribution of the incoming state
        for (int n = 0; n < Mp; ++n) {  // v = dA x~
          vr[n] = xr[n] * ar[n] - xi[n] * ai[n];
          vi[n] = xr[n] * ai[n] + xi[n] * ar[n];
        }
        for (int j0 = 0; j0 < Tc; j0 += R) {
          double acc[4][R] = {};  // four independent sums: no long FMA latency chain
          for (int n = 0; n < Mp; n += 4)
            for (int g = 0; g < 4; ++g)
              for (int r = 0; r < R; ++r)
                acc[g][r] += vr[n + g] * Ptr[(n + g) * R + r] - vi[n + g] * Pti[(n + g) * R + r];
          const int rn = std::min(R, Tc - j0);
          for (int r = 0; r < rn; ++r) {
            double sum = (acc[0][r] + acc[1][r]) + (acc[2][r] + acc[3][r]);
            yr[t0 + j0 + r] = static_cast<float>(yr[t0 + j0 + r] + 2.0 * sum);
          }
          for (int n = 0; n < Mp; ++n) {  // v *= dA^16
            double t = vr[n] * a16r[n] - vi[n] * a16i[n];
            vi[n] = vr[n] * a16i[n] + vi[n] * a16r[n];
            vr[n] = t;
          }
        }
      }
      if (t0 + Tc < L) {  // x~ <- dA^Tc x~ + CB sum_k dA^(Tc-1-k) u[k]
        const int full = Tc / R * R;
        for (int k0 = 0; k0 < full; k0 += R) {
          std::fill(qr.begin(), qr.end(), 0.0);
          std::fill(qi.begin(), qi.end(), 0.0);
          for (int r = 0; r < R; ++r) {
            const double uk = ur[t0 + k0 + r];
            const double* pr = &Pr[(R - 1 - r) * Mp];
            const double* pi = &Pi[(R - 1 - r) * Mp];
            for (int n = 0; n < Mp; ++n) qr[n] += pr[n] * uk, qi[n] += pi[n] * uk;
          }
          for (int n = 0; n < Mp; ++n) {  // x~ = dA^16 x~ + CB Q
            double t = xr[n] * a16r[n] - xi[n] * a16i[n] + cr[n] * qr[n] - ci[n] * qi[n];
            xi[n] = xr[n] * a16i[n] + xi[n] * a16r[n] + cr[n] * qi[n] + ci[n] * qr[n];
            xr[n] = t;
          }
        }
        for (int k = full; k < Tc; ++k) {
          const double uk = ur[t0 + k];
          for (int n = 0; n < Mp; ++n) {
            double t = xr[n] * ar[n] - xi[n] * ai[n] + cr[n] * uk;
            xi[n] = xr[n] * ai[n] + xi[n] * ar[n] + ci[n] * uk;
            xr[n] = t;
          }
        }
      }
    }
  }
}

}  // namespace hippo

namespace hippo {

// du[s] = sum_{t>=s} K[t-s] dy[t] + D dy[s] is the causal convolution of the time-reversed dy
// with the same K, so it reuses the chunked forward on reversed copies. With
//   x_t = dA x_{t-1} + u_t  and  z_t = d x_t / d dA = dA z_{t-1} + x_{t-1},
// dK[l] = sum_t dy[t] u[t-l] gives sum_l dK[l] dA^l = sum_t dy[t] x_t =: S and
// sum_l dK[l] l dA^(l-1) = sum_t dy[t] z_t =: P, so with K[l] = 2 Re(CB dA^l):
//   dCB = (2 Re S, -2 Im S),  d dA = (2 Re(CB P), -2 Im(CB P)).
void flashconv_ssm_bwd(const float* u, const DiagSsmDiscrete& ssm, const float* D, const float* dy,
                       float* du, float* dD, const DiagSsmDiscreteGrad& grad, int B, int H, int L,
                       int T) {
  check_ssm(ssm);
  HIPPO_CHECK(u && dy && du, "flashconv_ssm_bwd: 'u', 'dy' or 'du' is null");
  HIPPO_CHECK(B >= 1 && H >= 1 && L >= 1, "flashconv_ssm_bwd: shape (B, H, L) = (", B, ", ", H,
              ", ", L, ") must be positive");
  HIPPO_CHECK(T >= 1, "flashconv_ssm_bwd: chunk length T = ", T, " must be positive");
  const size_t n = static_cast<size_t>(B) * H * L;
  static thread_local Buffer rev_in, rev_out;
  float* dyr = rev_in.get(n);
  float* dur = rev_out.get(n);
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < static_cast<int64_t>(B) * H; ++row)
    for (int t = 0; t < L; ++t) dyr[row * L + t] = dy[row * L + (L - 1 - t)];
  flashconv_ssm_fwd(dyr, ssm, D, dur, B, H, L, T);
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < static_cast<int64_t>(B) * H; ++row)
    for (int t = 0; t < L; ++t) du[row * L + t] = dur[row * L + (L - 1 - t)];

  const int M = ssm.M;
  const bool want_params = grad.dA_re || grad.dA_im || grad.CB_re || grad.CB_im;
#pragma omp parallel for schedule(dynamic, 1)
  for (int h = 0; h < H; ++h) {
    if (dD) {
      double d = 0;
      for (int b = 0; b < B; ++b) {
        const size_t row = (static_cast<size_t>(b) * H + h) * L;
        for (int t = 0; t < L; ++t) d += static_cast<double>(dy[row + t]) * u[row + t];
      }
      dD[h] += static_cast<float>(d);
    }
    if (!want_params) continue;
    std::vector<double> ar(M), ai(M), xr(M), xi(M), zr(M), zi(M), Sr(M, 0.0), Si(M, 0.0),
        Pr(M, 0.0), Pi(M, 0.0);
    for (int m = 0; m < M; ++m) {
      size_t i = static_cast<size_t>(h) * M + m;
      ar[m] = ssm.dA_re[i], ai[m] = ssm.dA_im[i];
    }
    for (int b = 0; b < B; ++b) {
      const size_t row = (static_cast<size_t>(b) * H + h) * L;
      std::fill(xr.begin(), xr.end(), 0.0), std::fill(xi.begin(), xi.end(), 0.0);
      std::fill(zr.begin(), zr.end(), 0.0), std::fill(zi.begin(), zi.end(), 0.0);
      for (int t = 0; t < L; ++t) {
        const double ut = u[row + t], gt = dy[row + t];
        for (int m = 0; m < M; ++m) {
          double nzr = ar[m] * zr[m] - ai[m] * zi[m] + xr[m];  // z_t = dA z_{t-1} + x_{t-1}
          double nzi = ar[m] * zi[m] + ai[m] * zr[m] + xi[m];
          double nxr = ar[m] * xr[m] - ai[m] * xi[m] + ut;  // x_t = dA x_{t-1} + u_t
          double nxi = ar[m] * xi[m] + ai[m] * xr[m];
          zr[m] = nzr, zi[m] = nzi, xr[m] = nxr, xi[m] = nxi;
          Sr[m] += gt * nxr, Si[m] += gt * nxi;
          Pr[m] += gt * nzr, Pi[m] += gt * nzi;
        }
      }
    }
    for (int m = 0; m < M; ++m) {
      size_t i = static_cast<size_t>(h) * M + m;
      double cr = ssm.CB_re[i], ci = ssm.CB_im[i];
      double cpr = cr * Pr[m] - ci * Pi[m], cpi = cr * Pi[m] + ci * Pr[m];
      if (grad.CB_re) grad.CB_re[i] += static_cast<float>(2.0 * Sr[m]);
      if (grad.CB_im) grad.CB_im[i] += static_cast<float>(-2.0 * Si[m]);
      if (grad.dA_re) grad.dA_re[i] += static_cast<float>(2.0 * cpr);
      if (grad.dA_im) grad.dA_im[i] += static_cast<float>(-2.0 * cpi);
    }
  }
}

}  // namespace hippo
