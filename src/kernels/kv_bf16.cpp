#include "kernels/kv_bf16.h"

#include <algorithm>

#include "core/bf16.h"

// GCC 12's AVX-512 intrinsics start some results from an "undefined" register and the
// uninitialised-use warning fires inside the header (as in gemm_small.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "core/cpu_features.h"

namespace hippo {

void kv_bf16_scores_portable(const float* q, const uint16_t* K, int64_t n, int dh, float scale,
                             float* s) {
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t* kj = K + j * dh;
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int i = 0; i < dh; ++i) acc += q[i] * bf16_to_f32(kj[i]);
    s[j] = acc * scale;
  }
}

void kv_bf16_weighted_sum_portable(const float* p, const uint16_t* V, int64_t n, int dh, float* o) {
  std::fill(o, o + dh, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t* vj = V + j * dh;
#pragma omp simd
    for (int i = 0; i < dh; ++i) o[i] += p[j] * bf16_to_f32(vj[i]);
  }
}

namespace {
// 16 bf16 values widened exactly to fp32 (the bits become the upper half).
HIPPO_TARGET_AVX512 inline __m512 widen16(const uint16_t* x) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

HIPPO_TARGET_AVX512 void scores_avx512(const float* q, const uint16_t* K, int64_t n, int dh,
                                       float scale, float* s) {
  const int nv = dh / 16;
  __m512 qv[16];
  for (int v = 0; v < nv; ++v) qv[v] = _mm512_loadu_ps(q + 16 * v);
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t* kj = K + j * dh;
    __m512 acc = _mm512_mul_ps(qv[0], widen16(kj));
    for (int v = 1; v < nv; ++v) acc = _mm512_fmadd_ps(qv[v], widen16(kj + 16 * v), acc);
    s[j] = _mm512_reduce_add_ps(acc) * scale;
  }
}

HIPPO_TARGET_AVX512 void weighted_sum_avx512(const float* p, const uint16_t* V, int64_t n, int dh,
                                             float* o) {
  // Up to 4 vectors of the output (64 dims) stay in registers over all n rows.
  for (int i0 = 0; i0 < dh; i0 += 64) {
    const int nv = std::min(4, (dh - i0) / 16);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    for (int64_t j = 0; j < n; ++j) {
      const __m512 pj = _mm512_set1_ps(p[j]);
      const uint16_t* vj = V + j * dh + i0;
      for (int v = 0; v < nv; ++v) acc[v] = _mm512_fmadd_ps(pj, widen16(vj + 16 * v), acc[v]);
    }
    for (int v = 0; v < nv; ++v) _mm512_storeu_ps(o + i0 + 16 * v, acc[v]);
  }
}
}  // namespace

// The AVX-512 paths where active_isa() allows them (chosen at run time, so a portable build
// takes them too; until session 15 this was a compile-time choice).
void kv_bf16_scores(const float* q, const uint16_t* K, int64_t n, int dh, float scale, float* s) {
  if (active_isa() >= Isa::Avx512 && dh % 16 == 0 && dh <= 256)
    return scores_avx512(q, K, n, dh, scale, s);
  kv_bf16_scores_portable(q, K, n, dh, scale, s);
}

void kv_bf16_weighted_sum(const float* p, const uint16_t* V, int64_t n, int dh, float* o) {
  if (active_isa() >= Isa::Avx512 && dh % 16 == 0) return weighted_sum_avx512(p, V, n, dh, o);
  kv_bf16_weighted_sum_portable(p, V, n, dh, o);
}

}  // namespace hippo
