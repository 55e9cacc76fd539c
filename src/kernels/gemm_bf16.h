// y = x W^T with W stored as bf16 (out, in) row-major (PyTorch's Linear layout) or with its
// first W.rows8 rows in the Rows8 order (core/weight.h; every path, the same results bit for
// bit), x (rows, in) and y (rows, out) fp32, fp32 accumulation. Used by inference with bf16
// weights: the weights are never widened as a whole.
//  - rows <= kBf16GemvRows (decoding): one pass over W for all rows, AVX-512 when the CPU has
//    it, OpenMP over output rows when there is enough work.
//  - more rows (prompts): W is widened in blocks of output rows that stay in cache, each block
//    multiplied by oneDNN's fp32 GEMM.
#pragma once
#include <cstdint>

#include "core/cpu_features.h"
#include "core/weight.h"

namespace hippo {

constexpr int64_t kBf16GemvRows = 16;

// Activations in the small-rows (decoding) products with bf16 weights:
//  - Exact (default): x stays fp32, the weights are widened exactly; the result is the fp32
//    product with the bf16 weights.
//  - RoundedToBf16: x is rounded to bf16 (nearest even) and the pairs multiplied by VDPBF16PS
//    with fp32 sums, as llama.cpp does for bf16 models and PyTorch's bf16 autocast does for
//    every matmul. About twice the batch-8 decode speed (docs/performance.md); logits move by
//    about 1e-3 relative. Only where the CPU has AVX512_BF16; elsewhere Exact.
// Prompts (more than kBf16GemvRows rows) are always exact. The mode is an argument of
// matmul_xwt_bf16; set_bf16_activations only sets the default its callers pass today
// (nn/linear.cpp, models/lm.cpp, set by --fast-bf16) until a model/session option carries it.
enum class Bf16Activations { Exact, RoundedToBf16 };
void set_bf16_activations(Bf16Activations mode);
Bf16Activations bf16_activations();

// y = x W^T, or y += x W^T when accumulate; activations per `act` (above).
void matmul_xwt_bf16(const float* x, Bf16Data W, float* y, int64_t rows, int64_t in,
                     int64_t out, bool accumulate = false,
                     Bf16Activations act = bf16_activations());

// matmul_xwt_bf16 for outputs [begin, end) only (columns of y), rows <= kBf16GemvRows, on the
// calling thread (no fork): for threads inside one parallel region (a decoding step). Takes the
// path matmul_xwt_bf16 takes for these rows and `act`; any split of [0, out) gives its result
// bit for bit.
void matmul_xwt_bf16_part(const float* x, Bf16Data W, float* y, int64_t rows, int64_t in,
                          int64_t out, bool accumulate, Bf16Activations act, int64_t begin,
                          int64_t end);

// The small-rows kernel on the path of instruction-set level `level` (core/cpu_features.h), any
// rows count; Error if the level is not enabled. The paths:
//   Scalar, Avx2  portable C++
//   Avx512        widen W by a 16-bit shift, fp32 FMA
//   Avx512Bf16    VDPBF16PS on x split into two bf16 parts (x = hi + lo), see gemm_bf16.cpp
// matmul_xwt_bf16 takes the path of active_isa().
void matmul_xwt_bf16_gemv(const float* x, Bf16Data W, float* y, int64_t rows, int64_t in,
                          int64_t out, bool accumulate, Isa level);
// The RoundedToBf16 product for at most kBf16GemvRows rows (any rows count); Error without
// AVX512_BF16. Its reference is matmul_xwt_bf16_ref on x rounded to bf16.
void matmul_xwt_bf16_rounded_x(const float* x, Bf16Data W, float* y, int64_t rows,
                               int64_t in, int64_t out, bool accumulate);
// The large-rows path (blocked widening + fp32 GEMM), for any rows count.
void matmul_xwt_bf16_blocked(const float* x, Bf16Data W, float* y, int64_t rows,
                             int64_t in, int64_t out, bool accumulate);
// Double-precision triple loop: the reference the tests compare with.
void matmul_xwt_bf16_ref(const float* x, Bf16Data W, float* y, int64_t rows, int64_t in,
                         int64_t out, bool accumulate = false);

}  // namespace hippo
