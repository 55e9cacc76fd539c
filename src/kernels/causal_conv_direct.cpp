#include "kernels/causal_conv_direct.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/cpu_features.h"
#include "core/error.h"
#include "kernels/parallel_work.h"

namespace hippo {

namespace {
void check_shapes(int B, int H, int L, int N) {
  HIPPO_CHECK(B >= 0 && H >= 0 && L >= 0, "causal_conv_direct: negative shape B=", B, " H=", H,
              " L=", L);
  HIPPO_CHECK(N >= 1, "causal_conv_direct: kernel length N=", N, " must be >= 1");
}

// One row: tap by tap, each tap a contiguous axpy, which vectorises (a per-output dot product
// would read u backwards). Written once, compiled per instruction-set level (HIPPO_TARGET_*):
// 0.6% of a portable build's `bench generate` run, not in the native profile.
[[gnu::always_inline]] inline void row_body(const float* us, const float* k, float* ys, int L,
                                            int N) {
  for (int t = 0; t < L; ++t) ys[t] = 0.0f;
  for (int j = 0; j < std::min(N, L); ++j) {
    const float kj = k[j];
    float* yo = ys + j;
#pragma omp simd
    for (int t = 0; t < L - j; ++t) yo[t] += kj * us[t];
  }
}
void row_scalar(const float* us, const float* k, float* ys, int L, int N) {
  row_body(us, k, ys, L, N);
}
HIPPO_TARGET_AVX2 void row_avx2(const float* us, const float* k, float* ys, int L, int N) {
  row_body(us, k, ys, L, N);
}
HIPPO_TARGET_AVX512 void row_avx512(const float* us, const float* k, float* ys, int L, int N) {
  row_body(us, k, ys, L, N);
}
}  // namespace

void causal_conv_direct(const float* u, const float* K, float* y, int B, int H, int L, int N) {
  check_shapes(B, H, L, N);
  const Isa level = active_isa();
  const auto row = level >= Isa::Avx512 ? row_avx512 : level >= Isa::Avx2 ? row_avx2 : row_scalar;
#pragma omp parallel for collapse(2) schedule(static) if (worth_parallel(int64_t{B} * H * L * N))
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const int64_t off = (static_cast<int64_t>(b) * H + h) * L;
      row(u + off, K + static_cast<int64_t>(h) * N, y + off, L, N);
    }
}

void causal_conv_direct_backward(const float* u, const float* K, const float* dy, float* du,
                                 float* dK_accum, int B, int H, int L, int N) {
  check_shapes(B, H, L, N);
  // One channel per thread so dK needs no reduction across threads.
#pragma omp parallel for schedule(static) if (worth_parallel(int64_t{B} * H * L * N))
  for (int h = 0; h < H; ++h) {
    const float* k = K + static_cast<int64_t>(h) * N;
    float* dk = dK_accum + static_cast<int64_t>(h) * N;
    for (int b = 0; b < B; ++b) {
      const int64_t off = (static_cast<int64_t>(b) * H + h) * L;
      const float* us = u + off;
      const float* g = dy + off;
      float* dus = du + off;
      for (int t = 0; t < L; ++t) dus[t] = 0.0f;
      for (int j = 0; j < std::min(N, L); ++j) {
        const float kj = k[j];
        const float* go = g + j;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int t = 0; t < L - j; ++t) {
          dus[t] += kj * go[t];
          acc += go[t] * us[t];
        }
        dk[j] += acc;
      }
    }
  }
}

}  // namespace hippo
