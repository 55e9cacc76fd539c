// Direct float64 causal convolutions (see ops_f64.h). y[t] = sum_{s<=t} K[t-s] u[s] + D u[t].
#include "ops_f64.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace hippo::py {

namespace {

// One channel: y = K * u + D u.
void conv_row(const double* u, const double* K, double D, double* y, int L) {
  for (int t = 0; t < L; ++t) {
    double acc = D * u[t];
    for (int s = 0; s <= t; ++s) acc += K[t - s] * u[s];
    y[t] = acc;
  }
}

// One channel's backward: du = K^T dy + D dy (overwritten); dK, dD accumulated.
void conv_row_bwd(const double* u, const double* K, double D, const double* dy, double* du,
                  double* dK, double* dD, int L) {
  for (int s = 0; s < L; ++s) {
    double acc = D * dy[s];
    for (int t = s; t < L; ++t) acc += K[t - s] * dy[t];
    du[s] = acc;
  }
  for (int j = 0; j < L; ++j) {
    double acc = 0;
    for (int t = j; t < L; ++t) acc += dy[t] * u[t - j];
    dK[j] += acc;
  }
  double d = 0;
  for (int t = 0; t < L; ++t) d += dy[t] * u[t];
  *dD += d;
}

}  // namespace

void fftconv_forward_f64(const double* u, const double* k, const double* D, double* y, int B,
                         int H, int L) {
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const int64_t o = (static_cast<int64_t>(b) * H + h) * L;
      conv_row(u + o, k + static_cast<int64_t>(h) * L, D[h], y + o, L);
    }
}

void fftconv_backward_f64(const double* u, const double* k, const double* D, const double* dy,
                          double* du, double* dk, double* dD, int B, int H, int L) {
  std::fill(dk, dk + static_cast<int64_t>(H) * L, 0.0);
  std::fill(dD, dD + H, 0.0);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const int64_t o = (static_cast<int64_t>(b) * H + h) * L;
      conv_row_bwd(u + o, k + static_cast<int64_t>(h) * L, D[h], dy + o, du + o,
                   dk + static_cast<int64_t>(h) * L, dD + h, L);
    }
}

void h3_conv_forward_f64(const double* q, const double* k, const double* v, const double* K,
                         const double* D, double* y, int B, int H, int L) {
  std::vector<double> w(static_cast<size_t>(L)), z(static_cast<size_t>(L));
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const int64_t o = (static_cast<int64_t>(b) * H + h) * L;
      for (int t = 0; t < L; ++t) w[t] = k[o + t] * v[o + t];
      conv_row(w.data(), K + static_cast<int64_t>(h) * L, D[h], z.data(), L);
      for (int t = 0; t < L; ++t) y[o + t] = q[o + t] * z[t];
    }
}

// y = q z, z = K * w + D w, w = k v: dq = dy z; dz = dy q; dw = K^T dz + D dz; dk = dw v,
// dv = dw k; dK, dD from (w, dz).
void h3_conv_backward_f64(const double* q, const double* k, const double* v, const double* K,
                          const double* D, const double* dy, double* dq, double* dk, double* dv,
                          double* dK, double* dD, int B, int H, int L) {
  std::fill(dK, dK + static_cast<int64_t>(H) * L, 0.0);
  std::fill(dD, dD + H, 0.0);
  std::vector<double> w(static_cast<size_t>(L)), z(static_cast<size_t>(L)),
      dz(static_cast<size_t>(L)), dw(static_cast<size_t>(L));
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const int64_t o = (static_cast<int64_t>(b) * H + h) * L;
      const double* Kh = K + static_cast<int64_t>(h) * L;
      for (int t = 0; t < L; ++t) w[t] = k[o + t] * v[o + t];
      conv_row(w.data(), Kh, D[h], z.data(), L);
      for (int t = 0; t < L; ++t) {
        dq[o + t] = dy[o + t] * z[t];
        dz[t] = dy[o + t] * q[o + t];
      }
      conv_row_bwd(w.data(), Kh, D[h], dz.data(), dw.data(), dK + static_cast<int64_t>(h) * L,
                   dD + h, L);
      for (int t = 0; t < L; ++t) {
        dk[o + t] = dw[t] * v[o + t];
        dv[o + t] = dw[t] * k[o + t];
      }
    }
}

}  // namespace hippo::py
