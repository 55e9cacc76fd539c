// The plain reference path of FlashConv: direct causal convolution, O(L^2) per channel,
// accumulated in double. Obviously correct, slow; tests hold the fast path to it.
#include <vector>

#include "core/error.h"
#include "kernels/flashconv/flashconv.h"

namespace hippo {

namespace {

// out[t] = sum_{s<=t} K[t-s] x[s] + D x[t]
void conv_row(const float* x, const float* K, double D, double* out, int L) {
  for (int t = 0; t < L; ++t) {
    double acc = D * x[t];
    for (int s = 0; s <= t; ++s) acc += static_cast<double>(K[t - s]) * x[s];
    out[t] = acc;
  }
}

// out[s] = sum_{t>=s} K[t-s] g[t] + D g[s]  (the adjoint of conv_row)
void conv_row_adjoint(const double* g, const float* K, double D, double* out, int L) {
  for (int s = 0; s < L; ++s) {
    double acc = D * g[s];
    for (int t = s; t < L; ++t) acc += static_cast<double>(K[t - s]) * g[t];
    out[s] = acc;
  }
}

// dK[j] += sum_t g[t] x[t-j]; returns sum_t g[t] x[t] (the dD term).
double correlate_into(const double* g, const double* x, float* dK, int L) {
  for (int j = 0; j < L; ++j) {
    double acc = 0;
    for (int t = j; t < L; ++t) acc += g[t] * x[t - j];
    dK[j] += static_cast<float>(acc);
  }
  double d = 0;
  for (int t = 0; t < L; ++t) d += g[t] * x[t];
  return d;
}

void check(int B, int H, int L) {
  HIPPO_CHECK(B >= 1 && H >= 1 && L >= 1, "flashconv_ref: shape (B, H, L) = (", B, ", ", H, ", ",
              L, ") must be positive");
}

}  // namespace

void flashconv_ref_fwd(const float* u, const float* K, const float* D, float* y, int B, int H,
                       int L) {
  check(B, H, L);
  std::vector<double> out(L);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      size_t row = (static_cast<size_t>(b) * H + h) * L;
      conv_row(u + row, K + static_cast<size_t>(h) * L, D ? D[h] : 0.0, out.data(), L);
      for (int t = 0; t < L; ++t) y[row + t] = static_cast<float>(out[t]);
    }
}

void flashconv_ref_bwd(const float* u, const float* K, const float* D, const float* dy, float* du,
                       float* dK, float* dD, int B, int H, int L) {
  check(B, H, L);
  std::vector<double> g(L), x(L), out(L);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      size_t row = (static_cast<size_t>(b) * H + h) * L;
      for (int t = 0; t < L; ++t) g[t] = dy[row + t], x[t] = u[row + t];
      conv_row_adjoint(g.data(), K + static_cast<size_t>(h) * L, D ? D[h] : 0.0, out.data(), L);
      for (int t = 0; t < L; ++t) du[row + t] = static_cast<float>(out[t]);
      double d = correlate_into(g.data(), x.data(), dK + static_cast<size_t>(h) * L, L);
      if (dD) dD[h] += static_cast<float>(d);
    }
}

void flashconv_ref_h3_fwd(const float* q, const float* k, const float* v, const float* K,
                          const float* D, float* y, int B, int H, int L) {
  check(B, H, L);
  std::vector<float> w(L);
  std::vector<double> s(L);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      size_t row = (static_cast<size_t>(b) * H + h) * L;
      for (int t = 0; t < L; ++t) w[t] = k[row + t] * v[row + t];
      conv_row(w.data(), K + static_cast<size_t>(h) * L, D ? D[h] : 0.0, s.data(), L);
      for (int t = 0; t < L; ++t) y[row + t] = static_cast<float>(q[row + t] * s[t]);
    }
}

void flashconv_ref_h3_bwd(const float* q, const float* k, const float* v, const float* K,
                          const float* D, const float* dy, float* dq, float* dk, float* dv,
                          float* dK, float* dD, int B, int H, int L) {
  check(B, H, L);
  std::vector<float> w(L);
  std::vector<double> wd(L), s(L), ds(L), dw(L);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      size_t row = (static_cast<size_t>(b) * H + h) * L;
      const float* Kh = K + static_cast<size_t>(h) * L;
      double Dh = D ? D[h] : 0.0;
      for (int t = 0; t < L; ++t) {
        w[t] = k[row + t] * v[row + t];
        wd[t] = static_cast<double>(k[row + t]) * v[row + t];
        ds[t] = static_cast<double>(q[row + t]) * dy[row + t];
      }
      conv_row(w.data(), Kh, Dh, s.data(), L);
      conv_row_adjoint(ds.data(), Kh, Dh, dw.data(), L);
      for (int t = 0; t < L; ++t) {
        dq[row + t] = static_cast<float>(dy[row + t] * s[t]);
        dk[row + t] = static_cast<float>(dw[t] * v[row + t]);
        dv[row + t] = static_cast<float>(dw[t] * k[row + t]);
      }
      double d = correlate_into(ds.data(), wd.data(), dK + static_cast<size_t>(h) * L, L);
      if (dD) dD[h] += static_cast<float>(d);
    }
}

}  // namespace hippo
