#include "kernels/causal_conv_direct.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/scratch.h"
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

// AVX-512: output-stationary, 8 vectors (128 outputs) in registers while the taps go by, each
// tap a broadcast and 8 loads of the input shifted back by the tap. The axpy form above loads
// and stores every output once per tap (store-bound; misaligned for 15 taps in 16): it was 2.4%
// of a 512-token 125M H3 prefill, the largest of H3's own costs (session 10 profile). The first
// blocks' outputs (t < N - 1) read a copy of the row's start behind zeros, so that they need
// no bounds: their taps before the row's start add k * 0; later blocks read the row itself. Each output sums the same products in the same order (tap 0 first, one fused
// multiply-add each) as row_body: the results are bitwise equal.
HIPPO_TARGET_AVX512 void row_avx512(const float* us, const float* k, float* ys, int L, int N) {
  constexpr int V = 16, A = 8;
  const int n = std::min(N, L);
  const int P = (n - 1 + V - 1) / V * V;  // zeros before the row (a whole number of vectors)
  // The copied start of the row: every input that outputs t < n - 1 read (N may exceed 128).
  const int head = std::min(L, n - 1 + A * V);
  thread_local ScratchBuffer pad_buf;
  float* pad = pad_buf.get(static_cast<size_t>(P) + head);
  std::fill(pad, pad + P, 0.0f);
  std::copy(us, us + head, pad + P);
  // Where outputs from t on read their inputs: the row, or the padded copy of its start.
  const auto input = [&](int t) { return t >= n - 1 ? us : static_cast<const float*>(pad + P); };
  int t = 0;
  for (; t + A * V <= L; t += A * V) {
    __m512 acc[A];
    for (int a = 0; a < A; ++a) acc[a] = _mm512_setzero_ps();
    const float* u = input(t);
    for (int j = 0; j < n; ++j) {
      const __m512 kj = _mm512_set1_ps(k[j]);
      const float* src = u + t - j;
      for (int a = 0; a < A; ++a)
        acc[a] = _mm512_fmadd_ps(kj, _mm512_loadu_ps(src + a * V), acc[a]);
    }
    for (int a = 0; a < A; ++a) _mm512_storeu_ps(ys + t + a * V, acc[a]);
  }
  for (; t < L; t += V) {  // the last < 128 outputs a vector at a time, the tail masked
    const __mmask16 m = L - t >= V ? __mmask16(0xFFFF) : __mmask16((1u << (L - t)) - 1);
    __m512 acc = _mm512_setzero_ps();
    const float* u = input(t);
    for (int j = 0; j < n; ++j)
      acc = _mm512_fmadd_ps(_mm512_set1_ps(k[j]), _mm512_maskz_loadu_ps(m, u + t - j), acc);
    _mm512_mask_storeu_ps(ys + t, m, acc);
  }
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
