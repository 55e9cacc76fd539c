// 16-lane AVX-512 vector for the FlashConv engine. Include only where AVX-512F code generation
// is enabled (fc_engine_avx512.cpp sets it by pragma).
#pragma once
#include <immintrin.h>

namespace hippo::fc {

struct VecAvx512 {
  using R = __m512;
  static constexpr int W = 16;
  static R load(const float* p) { return _mm512_load_ps(p); }
  static R loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, R a) { _mm512_store_ps(p, a); }
  static void storeu(float* p, R a) { _mm512_storeu_ps(p, a); }
  // Non-temporal store (p aligned to the vector), and the fence that orders such stores.
  static void stream(float* p, R a) { _mm512_stream_ps(p, a); }
  static void fence() { _mm_sfence(); }
  static R set1(float a) { return _mm512_set1_ps(a); }
  static R zero() { return _mm512_setzero_ps(); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R fmadd(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R fmsub(R a, R b, R c) { return _mm512_fmsub_ps(a, b, c); }
  static R fnmadd(R a, R b, R c) { return _mm512_fnmadd_ps(a, b, c); }
  // r[i][j] <- r[j][i] for a 16x16 block: 2x2 float blocks, 4x4 float blocks (as doubles),
  // then 128-bit lanes in two shuffle rounds.
  static void transpose(R* r) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
      __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
      __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
      r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
      r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
      r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
      r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    // r[4a + m] now holds rows 4a..4a+3, column m + 4*lane128 in 128-bit lane lane128.
    for (int i = 0; i < 16; i += 8)
      for (int m = 0; m < 4; ++m) {
        t[i + m] = _mm512_shuffle_f32x4(r[i + m], r[i + 4 + m], 0x88);
        t[i + 4 + m] = _mm512_shuffle_f32x4(r[i + m], r[i + 4 + m], 0xdd);
      }
    for (int m = 0; m < 8; ++m) {
      r[m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0x88);
      r[8 + m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0xdd);
    }
  }
};

}  // namespace hippo::fc
