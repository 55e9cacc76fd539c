// y = x W^T with W stored as q8 (core/weight.h: int8 in blocks of kQ8Block along a row, one
// fp32 scale per block), x (rows, in) and y (rows, out) fp32. Inference with q8 weights.
//  - rows <= kQ8GemvRows (decoding): x is quantized the same way (per block of 32, symmetric,
//    round to nearest), each block's integer dot product is exact in int32 (AVX512-VNNI or
//    AVX-VNNI VPDPBUSD where the CPU has it, else a scalar loop) and is scaled by the two
//    blocks' scales into an fp32 sum. One pass over W for all rows.
//  - more rows (prompts): W is dequantized to fp32 in blocks of output rows that stay in cache
//    and multiplied by oneDNN's fp32 GEMM with x unquantized (as the bf16 path widens its
//    weights): prompts cost no more than with bf16 weights and lose no accuracy to x's rounding.
#pragma once
#include <cstdint>

#include "core/cpu_features.h"
#include "core/weight.h"

namespace hippo {

constexpr int64_t kQ8GemvRows = 16;

// Quantizes rows (rows, in) of x, in a multiple of kQ8Block, per block of 32: s = max|x| / 127,
// q = round(x / s) (ties away from zero), s = 0 and q = 0 for an all-zero block. q (rows, in),
// s (rows, in / 32). Also how weights are quantized (models/q8_weights.h). Non-finite x is an
// Error naming `what`.
void quantize_q8(const float* x, int64_t rows, int64_t in, int8_t* q, float* s,
                 const char* what = "quantize_q8");
// quantize_q8 for weights: the same, except that each scale is max|x| / 127 rounded up to the
// nearest bf16 value (so it is stored as bf16 without change, core/weight.h scales_bf16) and
// q = round(x / s). The step is at most 2^-8 coarser than amax / 127.
void quantize_q8_weights(const float* x, int64_t rows, int64_t in, int8_t* q, float* s,
                         const char* what = "quantize_q8_weights");
// out (n, cols) = rows [r0, r0 + n) of W widened to fp32 (scale * q).
void dequantize_q8_rows(const WeightView& W, int64_t r0, int64_t n, float* out);

// y = x W^T or y += x W^T (accumulate). W.dtype must be Q8.
void matmul_xwt_q8(const float* x, int64_t rows, const WeightView& W, float* y,
                   bool accumulate = false);

// The decoding kernel on quantized activations, for output rows [o_begin, o_end) only, on the
// calling thread (it opens no parallel region, so it runs inside any): for r < rows,
//   y[r * ldy + o] (+)= sum over blocks b of xs[r, b] * W.scales[o, b] * sum_i xq[r, i] W.q[o, i].
// xq (rows, W.cols) and xs (rows, W.cols / 32) as quantize_q8 writes them. The paths:
//   Avx512 and up, CPU with AVX512_VNNI: VPDPBUSD on 512-bit registers (kernels/gemm_q8_vnni.h)
//   Avx2 and up, CPU with AVX-VNNI (and no AVX512_VNNI, or the level capped at avx2): the same
//     on 256-bit registers, VEX-encoded
//   otherwise (and Scalar always): portable C++ (int32 block sums)
void q8_dot_rows(const int8_t* xq, const float* xs, int64_t rows, const WeightView& W, float* y,
                 int64_t ldy, int64_t o_begin, int64_t o_end, bool accumulate, Isa level);
// Whether q8_dot_rows at `level` takes the VNNI path on this CPU.
bool q8_vnni_path(Isa level);

// matmul_xwt_q8 for outputs [begin, end) only, rows <= kQ8GemvRows, on the calling thread (no
// fork): x quantized by this thread, then q8_dot_rows at active_isa(). Any split of [0, W.rows)
// gives matmul_xwt_q8's result bit for bit.
void matmul_xwt_q8_part(const float* x, int64_t rows, const WeightView& W, float* y,
                        bool accumulate, int64_t begin, int64_t end);

// Which kernel q8_dot_rows runs at `level` on this CPU: AVX512-VNNI at avx512 and up where the
// CPU has it, else AVX-VNNI (256-bit) at avx2 and up where the CPU has it, else the portable loop.
enum class Q8DotPath { Portable, AvxVnni, Avx512Vnni };
Q8DotPath q8_dot_path(Isa level);
const char* q8_dot_path_name(Q8DotPath path);

// matmul_xwt_q8's decoding path (quantize x, q8_dot_rows split over threads) at a given level,
// any rows count; and its prompt path (dequantized blocks + fp32 GEMM), any rows count.
void matmul_xwt_q8_gemv(const float* x, int64_t rows, const WeightView& W, float* y,
                        bool accumulate, Isa level);
void matmul_xwt_q8_blocked(const float* x, int64_t rows, const WeightView& W, float* y,
                           bool accumulate);

// Double-precision references the tests compare with: q8_dot_rows's sum on the given quantized
// values, and the product of fp32 x with the dequantized W.
void q8_dot_ref(const int8_t* xq, const float* xs, int64_t rows, const WeightView& W, double* y);
void matmul_xwt_q8_ref(const float* x, int64_t rows, const WeightView& W, double* y);

}  // namespace hippo
