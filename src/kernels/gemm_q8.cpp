#include "kernels/gemm_q8.h"

// GCC 12's AVX-512 intrinsics start some results from an "undefined" register and the
// uninitialised-use warning fires inside the header when they are inlined into target("...")
// functions.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/scratch.h"
#include "kernels/gemm.h"
#include "kernels/parallel_work.h"

#define HIPPO_TARGET_AVX512_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")))

namespace hippo {

namespace {

constexpr int64_t B = kQ8Block;

void check_q8(const WeightView& W, const char* what) {
  HIPPO_CHECK(W.dtype == DType::Q8 && W.data && W.scales, what, ": the weight is not a q8 view");
  HIPPO_CHECK(W.cols % B == 0, what, ": q8 weight with ", W.cols, " columns (a multiple of ", B,
              " is needed)");
}

// One block of 32: scale and int8 values. Written once, compiled per target below, so the
// loops vectorise (nearbyint: round to nearest, ties to even, without a library call).
__attribute__((always_inline)) inline void quantize_block(const float* x, int8_t* q, float* s) {
  float amax = 0, poison = 0;
  for (int64_t i = 0; i < B; ++i) {
    amax = std::max(amax, std::fabs(x[i]));
    poison += x[i] * 0.0f;  // NaN when any element is NaN or Inf
  }
  if (poison != 0.0f || std::isnan(poison)) {  // non-finite block: NaN out, as fp32 would give
    *s = std::numeric_limits<float>::quiet_NaN();
    std::fill(q, q + B, int8_t{0});
    return;
  }
  if (amax == 0.0f) {
    *s = 0.0f;
    std::fill(q, q + B, int8_t{0});
    return;
  }
  *s = amax / 127.0f;
  const float inv = 127.0f / amax;
  for (int64_t i = 0; i < B; ++i) {
    const float v = std::min(127.0f, std::max(-127.0f, std::nearbyint(x[i] * inv)));
    q[i] = static_cast<int8_t>(static_cast<int>(v));
  }
}

HIPPO_TARGET_AVX512 void quantize_avx512(const float* x, int64_t blocks, int8_t* q, float* s) {
  for (int64_t b = 0; b < blocks; ++b) quantize_block(x + b * B, q + b * B, s + b);
}
void quantize_plain(const float* x, int64_t blocks, int8_t* q, float* s) {
  for (int64_t b = 0; b < blocks; ++b) quantize_block(x + b * B, q + b * B, s + b);
}

void store(float* y, float v, bool accumulate) { *y = accumulate ? *y + v : v; }

// ---- portable path: exact int32 block sums, fp32 accumulation of the scaled sums ------------
void dot_rows_scalar(const int8_t* xq, const float* xs, int64_t rows, const WeightView& W,
                     float* y, int64_t ldy, int64_t o0, int64_t o1, bool accumulate) {
  const int64_t in = W.cols, nb = in / B;
  const auto* Wq = static_cast<const int8_t*>(W.data);
  for (int64_t o = o0; o < o1; ++o) {
    const int8_t* w = Wq + o * in;
    const float* ws = W.scales + o * nb;
    for (int64_t r = 0; r < rows; ++r) {
      const int8_t* x = xq + r * in;
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t sum = 0;
        for (int64_t i = b * B; i < (b + 1) * B; ++i)
          sum += static_cast<int32_t>(x[i]) * static_cast<int32_t>(w[i]);
        acc += xs[r * nb + b] * ws[b] * static_cast<float>(sum);
      }
      store(y + r * ldy + o, acc, accumulate);
    }
  }
}

// ---- AVX512-VNNI path ----------------------------------------------------------------------
// VPDPBUSD multiplies unsigned by signed bytes, so x enters as |xq| (unsigned) and its signs
// move onto W (w negated where x < 0; |q| <= 127, so negation cannot overflow). One 64-byte
// chunk is two blocks: the 16 int32 lanes hold 4-product sums, lanes 0-7 of the first block and
// 8-15 of the second; they are converted to fp32 and multiplied by the two blocks' scale
// products spread over their 8 lanes. x's |q| and sign masks are made once per call (padded to
// whole chunks with zeros).
HIPPO_TARGET_AVX512_VNNI void dot_rows_vnni(const int8_t* xq, const float* xs, int64_t rows,
                                            const WeightView& W, float* y, int64_t ldy,
                                            int64_t o0, int64_t o1, bool accumulate) {
  const int64_t in = W.cols, nb = in / B;
  const int64_t chunks = (in + 63) / 64;
  const int64_t padded = chunks * 64, nbp = chunks * 2;
  thread_local ScratchBuffer buf;
  // |xq| rows (padded bytes), sign masks (chunks uint64), scales (nbp floats) per row.
  const int64_t row_bytes = padded + chunks * 8 + nbp * 4;
  auto* base = reinterpret_cast<unsigned char*>(buf.get(static_cast<size_t>(rows * row_bytes / 4 + 16)));
  for (int64_t r = 0; r < rows; ++r) {
    unsigned char* xa = base + r * row_bytes;
    auto* masks = reinterpret_cast<uint64_t*>(xa + padded);
    auto* sx = reinterpret_cast<float*>(xa + padded + chunks * 8);
    for (int64_t c = 0; c < chunks; ++c) {
      const __mmask64 valid = (in - c * 64) >= 64 ? ~__mmask64{0} : (__mmask64{1} << (in - c * 64)) - 1;
      const __m512i v = _mm512_maskz_loadu_epi8(valid, xq + r * in + c * 64);
      _mm512_storeu_si512(xa + c * 64, _mm512_abs_epi8(v));
      masks[c] = _mm512_movepi8_mask(v);
    }
    for (int64_t b = 0; b < nbp; ++b) sx[b] = b < nb ? xs[r * nb + b] : 0.0f;
  }
  const __m512i spread = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  const auto* Wq = static_cast<const int8_t*>(W.data);
  const bool tail = in % 64 != 0;
  const int64_t full = in / 64;
  for (int64_t o = o0; o < o1; ++o) {
    const int8_t* w = Wq + o * in;
    const float* ws = W.scales + o * nb;
    for (int64_t r = 0; r < rows; ++r) {
      const unsigned char* xa = base + r * row_bytes;
      const auto* masks = reinterpret_cast<const uint64_t*>(xa + padded);
      const auto* sx = reinterpret_cast<const float*>(xa + padded + chunks * 8);
      __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
      int64_t c = 0;
      for (; c + 1 < full; c += 2) {
        const __m512i w0 = _mm512_loadu_si512(w + c * 64);
        const __m512i w1 = _mm512_loadu_si512(w + c * 64 + 64);
        const __m512i s0 = _mm512_mask_sub_epi8(w0, masks[c], _mm512_setzero_si512(), w0);
        const __m512i s1 = _mm512_mask_sub_epi8(w1, masks[c + 1], _mm512_setzero_si512(), w1);
        const __m512i d0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(xa + c * 64), s0);
        const __m512i d1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(xa + c * 64 + 64), s1);
        // Scales of blocks 2c .. 2c+3: products, then each spread over its 8 lanes.
        const __m128 sc = _mm_mul_ps(_mm_loadu_ps(ws + 2 * c), _mm_loadu_ps(sx + 2 * c));
        const __m512 sc4 = _mm512_castps128_ps512(sc);
        const __m512 f0 = _mm512_permutexvar_ps(spread, sc4);
        const __m512 f1 = _mm512_permutexvar_ps(_mm512_add_epi32(spread, _mm512_set1_epi32(2)), sc4);
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), f0, acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), f1, acc1);
      }
      for (; c < chunks; ++c) {  // a last odd chunk, and a half chunk when in % 64 == 32
        const bool half = tail && c == chunks - 1;
        const __mmask64 valid = half ? (__mmask64{1} << 32) - 1 : ~__mmask64{0};
        const __m512i w0 = _mm512_maskz_loadu_epi8(valid, w + c * 64);
        const __m512i s0 = _mm512_mask_sub_epi8(w0, masks[c], _mm512_setzero_si512(), w0);
        const __m512i d0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(xa + c * 64), s0);
        const __mmask16 two = half ? 0x1 : 0x3;
        const __m512 sc = _mm512_mul_ps(_mm512_maskz_loadu_ps(two, ws + 2 * c),
                                        _mm512_maskz_loadu_ps(two, sx + 2 * c));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), _mm512_permutexvar_ps(spread, sc), acc0);
      }
      store(y + r * ldy + o, _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)), accumulate);
    }
  }
}

}  // namespace

void quantize_q8(const float* x, int64_t rows, int64_t in, int8_t* q, float* s, const char* what) {
  HIPPO_CHECK(in % B == 0, what, ": ", in, " columns is not a multiple of ", B);
  if (isa_enabled(Isa::Avx512))
    quantize_avx512(x, rows * in / B, q, s);
  else
    quantize_plain(x, rows * in / B, q, s);
}

void dequantize_q8_rows(const WeightView& W, int64_t r0, int64_t n, float* out) {
  check_q8(W, "dequantize_q8_rows");
  const int64_t in = W.cols, nb = in / B;
  const auto* q = static_cast<const int8_t*>(W.data) + r0 * in;
  const float* s = W.scales + r0 * nb;
  for (int64_t b = 0; b < n * nb; ++b)
    for (int64_t i = 0; i < B; ++i) out[b * B + i] = s[b] * static_cast<float>(q[b * B + i]);
}

bool q8_vnni_path(Isa level) {
  return static_cast<int>(level) >= static_cast<int>(Isa::Avx512) && isa_enabled(Isa::Avx512) &&
         cpu_features_detected().avx512_vnni;
}

void q8_dot_rows(const int8_t* xq, const float* xs, int64_t rows, const WeightView& W, float* y,
                 int64_t ldy, int64_t o_begin, int64_t o_end, bool accumulate, Isa level) {
  if (rows <= 0 || o_begin >= o_end) return;
  HIPPO_CHECK(isa_enabled(level), "q8_dot_rows: instruction-set level ", isa_name(level),
              " is not enabled on this CPU");
  if (q8_vnni_path(level))
    dot_rows_vnni(xq, xs, rows, W, y, ldy, o_begin, o_end, accumulate);
  else
    dot_rows_scalar(xq, xs, rows, W, y, ldy, o_begin, o_end, accumulate);
}

void matmul_xwt_q8_gemv(const float* x, int64_t rows, const WeightView& W, float* y,
                        bool accumulate, Isa level) {
  check_q8(W, "matmul_xwt_q8");
  const int64_t in = W.cols, out = W.rows, nb = in / B;
  if (rows <= 0 || out <= 0) return;
  thread_local ScratchBuffer buf;
  float* xs = buf.get(static_cast<size_t>(rows * nb + rows * in / 4 + 16));
  auto* xq = reinterpret_cast<int8_t*>(xs + rows * nb);
  quantize_q8(x, rows, in, xq, xs, "matmul_xwt_q8");
  parallel_range(out, worth_parallel_step(rows * in * out), [&](int64_t b, int64_t e) {
    q8_dot_rows(xq, xs, rows, W, y, out, b, e, accumulate, level);
  });
}

void matmul_xwt_q8_part(const float* x, int64_t rows, const WeightView& W, float* y,
                        bool accumulate, int64_t begin, int64_t end) {
  check_q8(W, "matmul_xwt_q8_part");
  HIPPO_CHECK(rows >= 0 && rows <= kQ8GemvRows, "matmul_xwt_q8_part: ", rows, " rows (at most ",
              kQ8GemvRows, ")");
  HIPPO_CHECK(0 <= begin && begin <= end && end <= W.rows, "matmul_xwt_q8_part: outputs [", begin,
              ", ", end, ") outside [0, ", W.rows, ")");
  const int64_t in = W.cols, out = W.rows, nb = in / B;
  if (rows == 0 || begin == end) return;
  thread_local ScratchBuffer buf;  // this thread's quantized x (each thread makes its own)
  float* xs = buf.get(static_cast<size_t>(rows * nb + rows * in / 4 + 16));
  auto* xq = reinterpret_cast<int8_t*>(xs + rows * nb);
  quantize_q8(x, rows, in, xq, xs, "matmul_xwt_q8");
  q8_dot_rows(xq, xs, rows, W, y, out, begin, end, accumulate, active_isa());
}

void matmul_xwt_q8_blocked(const float* x, int64_t rows, const WeightView& W, float* y,
                           bool accumulate) {
  check_q8(W, "matmul_xwt_q8");
  const int64_t in = W.cols, out = W.rows;
  if (rows <= 0 || out <= 0) return;
  // Blocks of about 4 MiB of fp32 weights, as matmul_xwt_bf16_blocked (kernels/gemm_bf16.cpp).
  constexpr int64_t kBlockFloats = int64_t{1} << 20;
  const int64_t nb = std::min(out, std::max<int64_t>(64, kBlockFloats / std::max<int64_t>(in, 1)));
  thread_local ScratchBuffer buf;
  float* w = buf.get(static_cast<size_t>(nb * in));
  for (int64_t o0 = 0; o0 < out; o0 += nb) {
    const int64_t n = std::min(nb, out - o0);
    parallel_range(n, worth_parallel(n * in), [&](int64_t b, int64_t e) {
      dequantize_q8_rows(W, o0 + b, e - b, w + b * in);
    });
    gemm(false, true, rows, n, in, 1.0f, x, in, w, in, accumulate ? 1.0f : 0.0f, y + o0, out);
  }
}

void matmul_xwt_q8(const float* x, int64_t rows, const WeightView& W, float* y, bool accumulate) {
  if (rows <= kQ8GemvRows)
    matmul_xwt_q8_gemv(x, rows, W, y, accumulate, active_isa());
  else
    matmul_xwt_q8_blocked(x, rows, W, y, accumulate);
}

void q8_dot_ref(const int8_t* xq, const float* xs, int64_t rows, const WeightView& W, double* y) {
  const int64_t in = W.cols, nb = in / B;
  const auto* Wq = static_cast<const int8_t*>(W.data);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < W.rows; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < in; ++i)
        acc += static_cast<double>(xs[r * nb + i / B]) * W.scales[o * nb + i / B] *
               xq[r * in + i] * Wq[o * in + i];
      y[r * W.rows + o] = acc;
    }
}

void matmul_xwt_q8_ref(const float* x, int64_t rows, const WeightView& W, double* y) {
  const int64_t in = W.cols, nb = in / B;
  const auto* Wq = static_cast<const int8_t*>(W.data);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < W.rows; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < in; ++i)
        acc += static_cast<double>(x[r * in + i]) * W.scales[o * nb + i / B] * Wq[o * in + i];
      y[r * W.rows + o] = acc;
    }
}

}  // namespace hippo
