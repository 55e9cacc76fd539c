#include "kernels/gemm_q8_vnni.h"

// GCC 12's AVX-512 intrinsics start some results from an "undefined" register and the
// uninitialised-use warning fires inside the header when they are inlined into target("...")
// functions.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <type_traits>

#include "core/scratch.h"

#define HIPPO_TARGET_AVX512_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")))
#define HIPPO_TARGET_AVX_VNNI __attribute__((target("avxvnni,avx2,fma")))

namespace hippo::q8_vnni {

namespace {

constexpr int64_t B = kQ8Block;
constexpr int kTogether = 4;  // output rows per pass over a row of x

void store1(float* y, float v, bool accumulate) { *y = accumulate ? *y + v : v; }

// ---- AVX512-VNNI ----------------------------------------------------------------------------
// Per row of x, per 64-byte chunk c of the C chunks (the last is half when in % 64 == 32), the
// prepared data: 64 bytes of x (zero past `in`) and 16 int32 lane biases (-128 * the lane's 4 x
// bytes). x's block scales are read where quantize_q8 wrote them.
constexpr int64_t kPrep512 = 64 * 2;  // bytes per chunk

// NR (1 or 4) consecutive output rows of W in either layout (core/weight.h Q8Layout): row j's
// full chunk c at w + j * rs + c * cs, its half chunk (c = in / 64 when in % 64 == 32) at
// wh + j * rsh + c * cs; the 8 scales of its full quad q at ws + j * srs + q * sqs, the scales
// of a last partial quad Q at wst + j * srt + Q * sqs (in elements of the scales' type S: float,
// or uint16_t for bf16 scales).
struct Rows512 {
  const int8_t *w, *wh;
  const void *ws, *wst;
  int64_t rs, cs, rsh, srs, sqs, srt;
  int64_t in, nb;
  int64_t pf;  // prefetch the bytes this far past w, in address order (0: none)
};

// The scales of a view as type S (float: `scales`, uint16_t: `scales_bf16`).
template <class S>
const S* scales_of(const WeightView& W) {
  if constexpr (std::is_same_v<S, float>)
    return W.scales;
  else
    return W.scales_bf16;
}

// Rows o.. of W (the first row of the 1 or 4 taken together; a group of 4 in Rows4 starts on a
// group boundary).
template <class S>
[[gnu::always_inline]] inline Rows512 rows_at(const WeightView& W, int64_t o, int64_t pf) {
  const int64_t in = W.cols, nb = in / B;
  const auto* q = static_cast<const int8_t*>(W.data);
  if (W.layout == Q8Layout::Rows || o >= W.rows / 4 * 4) {
    const int8_t* w = q + o * in;
    const S* s = scales_of<S>(W) + o * nb;
    return {w, w, s, s, in, 64, in, nb, 8, nb, in, nb, pf};
  }
  const int64_t g = o / 4 * 4, j = o % 4, nq = nb / 8, rem = nb - nq * 8;
  const int8_t* gw = q + g * in;
  const S* gs = scales_of<S>(W) + g * nb;
  return {gw + j * 64, gw + j * 32, gs + j * 8, gs + j * rem, 64, 256, 32, 8, 32, rem, in, nb, pf};
}

// Lanes 0-7 take element 2k of a vector of scales, lanes 8-15 element 2k + 1.
HIPPO_TARGET_AVX512_VNNI inline __m512i spread512(int k) {
  return _mm512_set_epi32(2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1,
                          2 * k + 1, 2 * k + 1, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k,
                          2 * k);
}

// Eight scales (lanes 0-7; lanes 8-15 zero) from fp32 or bf16 (widening bf16 is exact).
HIPPO_TARGET_AVX512_VNNI inline __m512 load_scales8(const float* p) {
  return _mm512_zextps256_ps512(_mm256_loadu_ps(p));
}
HIPPO_TARGET_AVX512_VNNI inline __m512 load_scales8(const uint16_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm512_zextps256_ps512(_mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
}
// The scales of mask m's lanes (of 0-7), the others 0; lanes 8-15 undefined.
HIPPO_TARGET_AVX512_VNNI inline __m512 load_scales_masked(__mmask8 m, const float* p) {
  return _mm512_castps256_ps512(_mm256_maskz_loadu_ps(m, p));
}
HIPPO_TARGET_AVX512_VNNI inline __m512 load_scales_masked(__mmask8 m, const uint16_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_maskz_loadu_epi16(m, p));
  return _mm512_castps256_ps512(_mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
}

// One chunk of NR rows: exact int32 lane sums, scaled per block, added to acc. kProducts: wsv[j]
// holds the products of row j's 8 weight scales and x's (a full quad), else row j's weight
// scales alone, multiplied here by sx (x's scale of the chunk's first block on lanes 0-7, of its
// second on lanes 8-15: the last, partial quad). Either way each lane is scaled by the same
// fp32 product of the two scales: the same bits.
template <int NR, bool kProducts, bool kPf>
HIPPO_TARGET_AVX512_VNNI inline void chunk512(const Rows512& R, const int8_t* const* wj,
                                             const unsigned char* xp, int64_t c, __mmask64 valid,
                                             const __m512* wsv, __m512i idx, __m512 sx,
                                             __m512* acc) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i xv = _mm512_load_si512(xp + c * kPrep512);
  const __m512i bias = _mm512_load_si512(xp + c * kPrep512 + 64);
  for (int j = 0; j < NR; ++j) {
    // The next group's rows, in address order (in the Rows layout the 4 rows' own loads are 4
    // strided streams).
    if (kPf)
      _mm_prefetch(reinterpret_cast<const char*>(R.w + R.pf + (c * NR + j) * 64), _MM_HINT_T0);
    // Bytes outside `valid` load as 0 and flip to 128; x is 0 there, so they add nothing.
    const __m512i w = kProducts ? _mm512_loadu_si512(wj[j] + c * R.cs)
                                : _mm512_maskz_loadu_epi8(valid, wj[j] + c * R.cs);
    const __m512i wu = _mm512_xor_si512(w, flip);
    const __m512i d = _mm512_dpbusd_epi32(bias, wu, xv);
    __m512 sc = _mm512_permutexvar_ps(idx, wsv[j]);
    if constexpr (!kProducts) sc = _mm512_mul_ps(sc, sx);
    acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), sc, acc[j]);
  }
}

// acc[j] (16 lanes each) -> lane j of the result holds the sum of acc[j]'s lanes.
HIPPO_TARGET_AVX512_VNNI inline __m128 reduce4_512(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  const __m512 t0 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
  const __m512 t1 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
  const __m512 u = _mm512_add_ps(
      _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t1))),
      _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t1))));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(u), _mm512_extractf32x8_ps(u, 1));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// NR rows of W (R, scales of type S) against one prepared row of x (xp, and xs: its nb block
// scales); returns the NR sums in lanes 0..NR-1.
template <int NR, class S, bool kPf = false>
HIPPO_TARGET_AVX512_VNNI __m128 rows512(const Rows512& R, const unsigned char* xp, const float* xs,
                                        int64_t C) {
  const S* ws = static_cast<const S*>(R.ws);
  const S* wst = static_cast<const S*>(R.wst);
  __m512 acc[kTogether];
  for (int j = 0; j < kTogether; ++j) acc[j] = _mm512_setzero_ps();
  const int64_t full = R.in / 64;
  const __m512i i0 = spread512(0), i1 = spread512(1), i2 = spread512(2), i3 = spread512(3);
  const __mmask64 all = ~__mmask64{0};
  const int8_t* wj[NR];
  for (int j = 0; j < NR; ++j) wj[j] = R.w + j * R.rs;
  int64_t c = 0;
  for (; c + 4 <= full; c += 4) {  // 4 chunks: 8 blocks (a quad), whose 8 scales one load brings
    // Each row's 8 weight scales times x's 8, once per quad, not once per chunk (session 16).
    const __m512 sx = _mm512_zextps256_ps512(_mm256_loadu_ps(xs + 2 * c));
    __m512 wsv[NR];
    for (int j = 0; j < NR; ++j)
      wsv[j] = _mm512_mul_ps(load_scales8(ws + j * R.srs + c / 4 * R.sqs), sx);
    chunk512<NR, true, kPf>(R, wj, xp, c, all, wsv, i0, sx, acc);
    chunk512<NR, true, kPf>(R, wj, xp, c + 1, all, wsv, i1, sx, acc);
    chunk512<NR, true, kPf>(R, wj, xp, c + 2, all, wsv, i2, sx, acc);
    chunk512<NR, true, kPf>(R, wj, xp, c + 3, all, wsv, i3, sx, acc);
  }
  // The last 0-3 chunks (one of them maybe a half): all in the last, partial quad of scales.
  const int64_t q = c / 4;
  for (; c < C; ++c) {
    const bool half = c >= full;
    const __mmask64 valid = half ? (__mmask64{1} << 32) - 1 : all;
    const int8_t* wh[NR];
    for (int j = 0; j < NR; ++j) wh[j] = half ? R.wh + j * R.rsh : wj[j];
    __m512 wsv[NR];
    for (int j = 0; j < NR; ++j)
      wsv[j] = load_scales_masked(half ? 0x1 : 0x3, wst + j * R.srt + q * R.sqs + 2 * (c - 4 * q));
    const float s0 = xs[2 * c], s1 = 2 * c + 1 < R.nb ? xs[2 * c + 1] : 0.0f;
    const __m512 sx = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(s0), _mm512_set1_ps(s1));
    chunk512<NR, false, kPf>(R, wh, xp, c, valid, wsv, i0, sx, acc);
  }
  return reduce4_512(acc[0], acc[1], acc[2], acc[3]);
}

// Four rows of a Rows4 group whose rows are whole quads (in % 256 == 0) against one prepared row
// of x: rows512<4> with the strides as constants (group g's chunk c of row j at
// w + c * 256 + j * 64, the scales of its quad q at ws + q * 32 + j * 8). The same operations in
// the same order, so the same bits. With the products of the scales once per quad, the kernel
// over the 125M matrices (batch 1, Rows4, bf16 scales) is 1.04-1.06x session 15's in
// in-process A Bs of 60-80 rounds, order rotated (session 16, docs/performance.md).
template <class S>
HIPPO_TARGET_AVX512_VNNI __m128 group512(const int8_t* w, const S* ws, const unsigned char* xp,
                                         const float* xs, int64_t C) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i idx[4] = {spread512(0), spread512(1), spread512(2), spread512(3)};
  __m512 acc[4];
  for (int j = 0; j < 4; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t c = 0; c < C; c += 4, w += 4 * 256, ws += 32) {
    const __m512 sx = _mm512_zextps256_ps512(_mm256_loadu_ps(xs + 2 * c));
    __m512 sc[4];
    for (int j = 0; j < 4; ++j) sc[j] = _mm512_mul_ps(load_scales8(ws + j * 8), sx);
    for (int k = 0; k < 4; ++k) {
      const __m512i xv = _mm512_load_si512(xp + (c + k) * kPrep512);
      const __m512i bias = _mm512_load_si512(xp + (c + k) * kPrep512 + 64);
      for (int j = 0; j < 4; ++j) {
        const __m512i wu = _mm512_xor_si512(_mm512_loadu_si512(w + k * 256 + j * 64), flip);
        const __m512i d = _mm512_dpbusd_epi32(bias, wu, xv);
        acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_permutexvar_ps(idx[k], sc[j]),
                                 acc[j]);
      }
    }
  }
  return reduce4_512(acc[0], acc[1], acc[2], acc[3]);
}

// ---- AVX-VNNI (256-bit) -----------------------------------------------------------------------
// One block per 32-byte chunk. Prepared per row of x: 8 int32 lane biases per block (x itself
// and its scales are read where quantize_q8 wrote them).
template <int NR>
HIPPO_TARGET_AVX_VNNI inline void chunk256(const int8_t* w, const float* ws, int64_t in,
                                          int64_t nb, const int8_t* x, const int32_t* bias,
                                          const float* xs, int64_t b, int64_t pf, __m256* acc) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + b * B));
  const __m256i bv = _mm256_load_si256(reinterpret_cast<const __m256i*>(bias + b * 8));
  const __m256 sx = _mm256_broadcast_ss(xs + b);
  for (int j = 0; j < NR; ++j) {
    if (pf && (b * NR + j) % 2 == 0)  // the next group's rows in address order, a line per 2 blocks
      _mm_prefetch(reinterpret_cast<const char*>(w + pf + (b * NR + j) * B), _MM_HINT_T0);
    const __m256i wu = _mm256_xor_si256(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + j * in + b * B)), flip);
    const __m256i d = _mm256_dpbusd_avx_epi32(bv, wu, xv);
    const __m256 sc = _mm256_mul_ps(_mm256_broadcast_ss(ws + j * nb + b), sx);
    acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), sc, acc[j]);
  }
}

HIPPO_TARGET_AVX_VNNI inline __m128 reduce4_256(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 t0 = _mm256_add_ps(_mm256_unpacklo_ps(a0, a1), _mm256_unpackhi_ps(a0, a1));
  const __m256 t1 = _mm256_add_ps(_mm256_unpacklo_ps(a2, a3), _mm256_unpackhi_ps(a2, a3));
  const __m256 u = _mm256_add_ps(
      _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t1))),
      _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t1))));
  return _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
}

template <int NR>
HIPPO_TARGET_AVX_VNNI __m128 rows256(const int8_t* w, const float* ws, int64_t in, int64_t nb,
                                     const int8_t* x, const int32_t* bias, const float* xs,
                                     int64_t pf) {
  __m256 acc[kTogether];
  for (int j = 0; j < kTogether; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) chunk256<NR>(w, ws, in, nb, x, bias, xs, b, pf, acc);
  return reduce4_256(acc[0], acc[1], acc[2], acc[3]);
}

// Writes the NR sums of lanes 0..NR-1 to y[0..NR).
void store_sums(float* y, __m128 s, int nr, bool accumulate) {
  alignas(16) float v[4];
  _mm_store_ps(v, s);
  for (int j = 0; j < nr; ++j) store1(y + j, v[j], accumulate);
}

}  // namespace

namespace {

template <class S>
HIPPO_TARGET_AVX512_VNNI void dot_rows_avx512_as(const int8_t* xq, const float* xs, int64_t rows,
                                                 const WeightView& W, float* y, int64_t ldy,
                                                 int64_t o0, int64_t o1, bool accumulate) {
  const int64_t in = W.cols, nb = in / B, C = (in + 63) / 64;
  thread_local ScratchBuffer buf;
  auto* prep = reinterpret_cast<unsigned char*>(
      buf.get(static_cast<size_t>(rows * C * kPrep512 / 4 + 16)));
  const __m512i ones128 = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) {
      unsigned char* p = prep + (r * C + c) * kPrep512;
      const int64_t left = in - c * 64;
      const __mmask64 valid = left >= 64 ? ~__mmask64{0} : (__mmask64{1} << left) - 1;
      const __m512i v = _mm512_maskz_loadu_epi8(valid, xq + r * in + c * 64);
      _mm512_store_si512(p, v);
      const __m512i s128 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones128, v);
      _mm512_store_si512(p + 64, _mm512_sub_epi32(_mm512_setzero_si512(), s128));
    }
  // Four rows at a time where four follow (in Rows4, a whole group), else one.
  const int64_t r4 = W.layout == Q8Layout::Rows4 ? W.rows / 4 * 4 : 0;
  for (int64_t o = o0; o < o1;) {
    const bool four = o + kTogether <= o1 && (o >= r4 || o % 4 == 0);
    if (four && W.layout == Q8Layout::Rows4 && o < r4 && in % 256 == 0) {
      const auto* gw = static_cast<const int8_t*>(W.data) + o * in;
      const S* gs = scales_of<S>(W) + o * nb;
      for (int64_t r = 0; r < rows; ++r)
        store_sums(y + r * ldy + o, group512<S>(gw, gs, prep + r * C * kPrep512, xs + r * nb, C),
                   kTogether, accumulate);
      o += kTogether;
    } else if (four) {
      // Software prefetch of the next group only for the Rows layout's four strided streams: on
      // Rows4's one stream the hardware prefetchers do better alone (session 14, in-process
      // A B over the 125M matrices: 1.05-1.09x faster without it; twice as far ahead: slower).
      const bool pf = W.layout == Q8Layout::Rows && o + 2 * kTogether <= o1;
      const Rows512 R = rows_at<S>(W, o, pf ? kTogether * in : 0);
      for (int64_t r = 0; r < rows; ++r) {
        // The first row of x brings the next group in.
        const unsigned char* xp = prep + r * C * kPrep512;
        store_sums(y + r * ldy + o,
                   r == 0 && pf ? rows512<kTogether, S, true>(R, xp, xs + r * nb, C)
                                : rows512<kTogether, S>(R, xp, xs + r * nb, C),
                   kTogether, accumulate);
      }
      o += kTogether;
    } else {
      const Rows512 R = rows_at<S>(W, o, 0);
      for (int64_t r = 0; r < rows; ++r)
        store_sums(y + r * ldy + o, rows512<1, S>(R, prep + r * C * kPrep512, xs + r * nb, C), 1,
                   accumulate);
      ++o;
    }
  }
}

}  // namespace

void dot_rows_avx512(const int8_t* xq, const float* xs, int64_t rows, const WeightView& W,
                     float* y, int64_t ldy, int64_t o0, int64_t o1, bool accumulate) {
  if (W.scales_bf16)
    dot_rows_avx512_as<uint16_t>(xq, xs, rows, W, y, ldy, o0, o1, accumulate);
  else
    dot_rows_avx512_as<float>(xq, xs, rows, W, y, ldy, o0, o1, accumulate);
}

HIPPO_TARGET_AVX_VNNI void dot_rows_avx256(const int8_t* xq, const float* xs, int64_t rows,
                                           const WeightView& W, float* y, int64_t ldy, int64_t o0,
                                           int64_t o1, bool accumulate) {
  const int64_t in = W.cols, nb = in / B;
  thread_local ScratchBuffer buf;
  auto* bias = reinterpret_cast<int32_t*>(buf.get(static_cast<size_t>(rows * nb * 8 + 16)));
  const __m256i ones128 = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + r * in + b * B));
      const __m256i s128 = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), ones128, v);
      _mm256_store_si256(reinterpret_cast<__m256i*>(bias + (r * nb + b) * 8),
                         _mm256_sub_epi32(_mm256_setzero_si256(), s128));
    }
  const auto* Wq = static_cast<const int8_t*>(W.data);
  int64_t o = o0;
  for (; o + kTogether <= o1; o += kTogether)
    for (int64_t r = 0; r < rows; ++r)
      store_sums(y + r * ldy + o,
                 rows256<kTogether>(Wq + o * in, W.scales + o * nb, in, nb, xq + r * in,
                                    bias + r * nb * 8, xs + r * nb,
                                    r == 0 && o + 2 * kTogether <= o1 ? kTogether * in : 0),
                 kTogether, accumulate);
  for (; o < o1; ++o)
    for (int64_t r = 0; r < rows; ++r)
      store_sums(y + r * ldy + o,
                 rows256<1>(Wq + o * in, W.scales + o * nb, in, nb, xq + r * in,
                            bias + r * nb * 8, xs + r * nb, 0),
                 1, accumulate);
}

}  // namespace hippo::q8_vnni
