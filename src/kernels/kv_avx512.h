// The AVX-512 loops of the bf16 and q8 KV caches (kv_bf16.cpp, kv_q8.cpp), written once for
// the cached element type T (uint16_t: bf16 bits; int8_t: q8 values): rows widened exactly to
// fp32 16 at a time, scaled per row by rs[j] where rs is not null (q8's row scales). The
// including file turns off GCC 12's false uninitialised-use warnings of the AVX-512 intrinsics
// before it includes this.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "core/cpu_features.h"

namespace hippo::kv_avx512 {

// 16 bf16 values widened exactly to fp32 (the bits become the upper half).
HIPPO_TARGET_AVX512 inline __m512 widen16(const uint16_t* x) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// 16 int8 values widened exactly to fp32.
HIPPO_TARGET_AVX512 inline __m512 widen16(const int8_t* x) {
  return _mm512_cvtepi32_ps(
      _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x))));
}

// s[j] = (sum_i q[i] K[j, i]) * (rs ? rs[j] * scale : scale); dh a multiple of 16, <= 256.
template <class T>
HIPPO_TARGET_AVX512 void scores(const float* q, const T* K, const float* rs, int64_t n, int dh,
                                float scale, float* s) {
  const int nv = dh / 16;
  __m512 qv[16];
  for (int v = 0; v < nv; ++v) qv[v] = _mm512_loadu_ps(q + 16 * v);
  for (int64_t j = 0; j < n; ++j) {
    const T* kj = K + j * dh;
    __m512 acc = _mm512_mul_ps(qv[0], widen16(kj));
    for (int v = 1; v < nv; ++v) acc = _mm512_fmadd_ps(qv[v], widen16(kj + 16 * v), acc);
    s[j] = _mm512_reduce_add_ps(acc) * (rs ? rs[j] * scale : scale);
  }
}

// o[i] = sum_j (rs ? p[j] rs[j] : p[j]) V[j, i], in order of j; dh a multiple of 16.
template <class T>
HIPPO_TARGET_AVX512 void weighted_sum(const float* p, const T* V, const float* rs, int64_t n,
                                      int dh, float* o) {
  // Up to 4 vectors of the output (64 dims) stay in registers over all n rows.
  for (int i0 = 0; i0 < dh; i0 += 64) {
    const int nv = std::min(4, (dh - i0) / 16);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    for (int64_t j = 0; j < n; ++j) {
      const __m512 w = _mm512_set1_ps(rs ? p[j] * rs[j] : p[j]);
      const T* vj = V + j * dh + i0;
      for (int v = 0; v < nv; ++v) acc[v] = _mm512_fmadd_ps(w, widen16(vj + 16 * v), acc[v]);
    }
    for (int v = 0; v < nv; ++v) _mm512_storeu_ps(o + i0 + 16 * v, acc[v]);
  }
}

}  // namespace hippo::kv_avx512
