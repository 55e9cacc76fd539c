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

  // 2. The state carried across chunk boundaries.
#pragma omp parallel for schedule(dynamic, 1)
  for (int bh = 0; bh < B * H; ++bh) {
    const int h = bh % H;
    const float* ur = u + static_cast<size_t>(bh) * L;
    float* yr = y + static_cast<size_t>(bh) * L;
    std::vector<double> ar(M), ai(M), cr(M), ci(M), xr(M, 0.0), xi(M, 0.0), pr(M), pi(M);
    for (int n = 0; n < M; ++n) {
      size_t i = static_cast<size_t>(h) * M + n;
      ar[n] = ssm.dA_re[i], ai[n] = ssm.dA_im[i], cr[n] = ssm.CB_re[i], ci[n] = ssm.CB_im[i];
    }
    for (int t0 = 0; t0 < L; t0 += T) {
      const int Tc = std::min(T, L - t0);
      if (t0 > 0) {  // contribution of the incoming state: p = dA^(j+1) x~
        for (int n = 0; n < M; ++n) {
          pr[n] = xr[n] * ar[n] - xi[n] * ai[n];
          pi[n] = xr[n] * ai[n] + xi[n] * ar[n];
        }
        for (int j = 0; j < Tc; ++j) {
          double acc = 0;
          for (int n = 0; n < M; ++n) {
            acc += pr[n];
            double r = pr[n] * ar[n] - pi[n] * ai[n];
            pi[n] = pr[n] * ai[n] + pi[n] * ar[n];
            pr[n] = r;
          }
          yr[t0 + j] = static_cast<float>(yr[t0 + j] + 2.0 * acc);
        }
      }
      if (t0 + Tc < L) {  // x~ <- dA x~ + CB u, step by step (Horner)
        for (int k = 0; k < Tc; ++k) {
          double uk = ur[t0 + k];
          for (int n = 0; n < M; ++n) {
            double r = xr[n] * ar[n] - xi[n] * ai[n] + cr[n] * uk;
            xi[n] = xr[n] * ai[n] + xi[n] * ar[n] + ci[n] * uk;
            xr[n] = r;
          }
        }
      }
    }
  }
}

}  // namespace hippo
