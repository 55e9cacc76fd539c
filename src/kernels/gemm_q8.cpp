#include "kernels/gemm_q8.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/scratch.h"
#include "kernels/gemm.h"
#include "kernels/gemm_q8_vnni.h"
#include "kernels/parallel_work.h"
#include "kernels/q8_layout.h"

namespace hippo {

namespace {

constexpr int64_t B = kQ8Block;

void check_q8(const WeightView& W, const char* what) {
  HIPPO_CHECK(W.dtype == DType::Q8 && W.data && q8_has_scales(W), what,
              ": the weight is not a q8 view");
  HIPPO_CHECK(W.cols % B == 0, what, ": q8 weight with ", W.cols, " columns (a multiple of ", B,
              " is needed)");
}

// One block of 32: scale and int8 values. Written once, compiled per target below, so the
// loops vectorise (nearbyint: round to nearest, ties to even, without a library call).
// kBf16Scale: the scale is rounded up to a bf16 value (weights; activations keep amax / 127).
template <bool kBf16Scale>
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
  float inv = 127.0f / amax;
  *s = amax / 127.0f;
  if constexpr (kBf16Scale) {
    *s = bf16_round_up(*s);  // the values still fit in [-127, 127]; stored as bf16 unchanged
    inv = 1.0f / *s;
  }
  for (int64_t i = 0; i < B; ++i) {
    const float v = std::min(127.0f, std::max(-127.0f, std::nearbyint(x[i] * inv)));
    q[i] = static_cast<int8_t>(static_cast<int>(v));
  }
}

template <bool kBf16Scale>
HIPPO_TARGET_AVX512 void quantize_avx512(const float* x, int64_t blocks, int8_t* q, float* s) {
  for (int64_t b = 0; b < blocks; ++b) quantize_block<kBf16Scale>(x + b * B, q + b * B, s + b);
}
template <bool kBf16Scale>
void quantize_plain(const float* x, int64_t blocks, int8_t* q, float* s) {
  for (int64_t b = 0; b < blocks; ++b) quantize_block<kBf16Scale>(x + b * B, q + b * B, s + b);
}

template <bool kBf16Scale>
void quantize_rows(const float* x, int64_t rows, int64_t in, int8_t* q, float* s,
                   const char* what) {
  HIPPO_CHECK(in % B == 0, what, ": ", in, " columns is not a multiple of ", B);
  if (isa_enabled(Isa::Avx512))
    quantize_avx512<kBf16Scale>(x, rows * in / B, q, s);
  else
    quantize_plain<kBf16Scale>(x, rows * in / B, q, s);
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

}  // namespace

void quantize_q8(const float* x, int64_t rows, int64_t in, int8_t* q, float* s, const char* what) {
  quantize_rows<false>(x, rows, in, q, s, what);
}

void quantize_q8_weights(const float* x, int64_t rows, int64_t in, int8_t* q, float* s,
                         const char* what) {
  quantize_rows<true>(x, rows, in, q, s, what);
}

void dequantize_q8_rows(const WeightView& W, int64_t r0, int64_t n, float* out) {
  check_q8(W, "dequantize_q8_rows");
  const int64_t in = W.cols, nb = in / B;
  if (W.layout == Q8Layout::Rows) {
    const auto* q = static_cast<const int8_t*>(W.data) + r0 * in;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t b = 0; b < nb; ++b) {
        const float sc = q8_scale(W, r0 + r, b);
        const int64_t at = (r * nb + b) * B;
        for (int64_t i = 0; i < B; ++i) out[at + i] = sc * static_cast<float>(q[at + i]);
      }
    return;
  }
  // Rows4 (core/weight.h): row j of a group has block b at (b / 2) * 256 + j * 64 + (b % 2) * 32
  // (the last, half chunk's block at full * 256 + j * 32); its scales in quads of 8.
  const auto* wq = static_cast<const int8_t*>(W.data);
  const int64_t r4 = W.rows / 4 * 4, full = in / 64;
  for (int64_t r = 0; r < n; ++r) {
    const int64_t o = r0 + r;
    float* dst = out + r * in;
    if (o >= r4) {
      dequantize_q8_rows(W.row_slice(o, 1).with_layout(Q8Layout::Rows), 0, 1, dst);
      continue;
    }
    const int8_t* g = wq + o / 4 * 4 * in;
    const int64_t j = o % 4;
    for (int64_t b = 0; b < nb; ++b) {  // a block's 32 values are contiguous
      const int8_t* q = b < 2 * full ? g + b / 2 * 256 + j * 64 + b % 2 * 32 : g + full * 256 + j * 32;
      const float sc = q8_scale(W, o, b);
      for (int64_t i = 0; i < B; ++i) dst[b * B + i] = sc * static_cast<float>(q[i]);
    }
  }
}

Q8DotPath q8_dot_path(Isa level) {
  const CpuFeatures& f = cpu_features_detected();
  const auto at_least = [&](Isa l) {
    return static_cast<int>(level) >= static_cast<int>(l) && isa_enabled(l);
  };
  if (at_least(Isa::Avx512) && f.avx512_vnni) return Q8DotPath::Avx512Vnni;
  if (at_least(Isa::Avx2) && f.avx_vnni) return Q8DotPath::AvxVnni;
  return Q8DotPath::Portable;
}

const char* q8_dot_path_name(Q8DotPath path) {
  switch (path) {
    case Q8DotPath::Portable: return "portable";
    case Q8DotPath::AvxVnni: return "avx_vnni";
    case Q8DotPath::Avx512Vnni: return "avx512_vnni";
  }
  return "?";
}

bool q8_vnni_path(Isa level) { return q8_dot_path(level) != Q8DotPath::Portable; }

void q8_dot_rows(const int8_t* xq, const float* xs, int64_t rows, const WeightView& W, float* y,
                 int64_t ldy, int64_t o_begin, int64_t o_end, bool accumulate, Isa level) {
  if (rows <= 0 || o_begin >= o_end) return;
  HIPPO_CHECK(isa_enabled(level), "q8_dot_rows: instruction-set level ", isa_name(level),
              " is not enabled on this CPU");
  const Q8DotPath path = q8_dot_path(level);
  if ((W.layout != Q8Layout::Rows || W.scales_bf16) && path != Q8DotPath::Avx512Vnni) {
    // Only the AVX512-VNNI kernel reads Rows4 (and bf16 scales) itself (models/q8_weights.cpp
    // picks Rows4 where it runs); the others take the rows as a row-major copy with fp32
    // scales, 64 at a time (any split of the outputs gives the same bits).
    constexpr int64_t kPiece = 64;
    thread_local ScratchBuffer buf;
    const int64_t nb = W.cols / B;
    float* sc = buf.get(static_cast<size_t>(kPiece * nb + kPiece * W.cols / 4 + 16));
    auto* q = reinterpret_cast<int8_t*>(sc + kPiece * nb);
    for (int64_t o = o_begin; o < o_end; o += kPiece) {
      const int64_t n = std::min(kPiece, o_end - o);
      q8_copy_rows(W, o, n, q, sc);
      const WeightView piece{DType::Q8, q, n, W.cols, sc};
      q8_dot_rows(xq, xs, rows, piece, y + o, ldy, 0, n, accumulate, level);
    }
    return;
  }
  switch (path) {
    case Q8DotPath::Avx512Vnni:
      q8_vnni::dot_rows_avx512(xq, xs, rows, W, y, ldy, o_begin, o_end, accumulate);
      return;
    case Q8DotPath::AvxVnni:
      q8_vnni::dot_rows_avx256(xq, xs, rows, W, y, ldy, o_begin, o_end, accumulate);
      return;
    case Q8DotPath::Portable:
      dot_rows_scalar(xq, xs, rows, W, y, ldy, o_begin, o_end, accumulate);
      return;
  }
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
        acc += static_cast<double>(xs[r * nb + i / B]) * q8_scale(W, o, i / B) *
               xq[r * in + i] * Wq[q8_value_offset(W, o, i)];
      y[r * W.rows + o] = acc;
    }
}

void matmul_xwt_q8_ref(const float* x, int64_t rows, const WeightView& W, double* y) {
  const int64_t in = W.cols;
  const auto* Wq = static_cast<const int8_t*>(W.data);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < W.rows; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < in; ++i)
        acc += static_cast<double>(x[r * in + i]) * q8_scale(W, o, i / B) *
               Wq[q8_value_offset(W, o, i)];
      y[r * W.rows + o] = acc;
    }
}

}  // namespace hippo
