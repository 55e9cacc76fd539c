#include "kernels/causal_conv_direct.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/error.h"

namespace hippo {

namespace {
void check_shapes(int B, int H, int L, int N) {
  HIPPO_CHECK(B >= 0 && H >= 0 && L >= 0, "causal_conv_direct: negative shape B=", B, " H=", H,
              " L=", L);
  HIPPO_CHECK(N >= 1, "causal_conv_direct: kernel length N=", N, " must be >= 1");
}
}  // namespace

void causal_conv_direct(const float* u, const float* K, float* y, int B, int H, int L, int N) {
  check_shapes(B, H, L, N);
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const int64_t off = (static_cast<int64_t>(b) * H + h) * L;
      const float* us = u + off;
      const float* k = K + static_cast<int64_t>(h) * N;
      float* ys = y + off;
      for (int t = 0; t < L; ++t) {
        const int jmax = std::min(t, N - 1);
        float acc = 0.0f;
        for (int j = 0; j <= jmax; ++j) acc += k[j] * us[t - j];
        ys[t] = acc;
      }
    }
}

void causal_conv_direct_backward(const float* u, const float* K, const float* dy, float* du,
                                 float* dK_accum, int B, int H, int L, int N) {
  check_shapes(B, H, L, N);
  // One channel per thread so dK needs no reduction across threads.
#pragma omp parallel for schedule(static)
  for (int h = 0; h < H; ++h) {
    const float* k = K + static_cast<int64_t>(h) * N;
    float* dk = dK_accum + static_cast<int64_t>(h) * N;
    for (int b = 0; b < B; ++b) {
      const int64_t off = (static_cast<int64_t>(b) * H + h) * L;
      const float* us = u + off;
      const float* g = dy + off;
      float* dus = du + off;
      for (int s = 0; s < L; ++s) {
        const int jmax = std::min(L - 1 - s, N - 1);
        float acc = 0.0f;
        for (int j = 0; j <= jmax; ++j) acc += k[j] * g[s + j];
        dus[s] = acc;
      }
      for (int j = 0; j < std::min(N, L); ++j) {
        float acc = 0.0f;
        for (int t = j; t < L; ++t) acc += g[t] * us[t - j];
        dk[j] += acc;
      }
    }
  }
}

}  // namespace hippo
