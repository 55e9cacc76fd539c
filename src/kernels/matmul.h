// The one entry for products with weights: y = x W^T for a weight of any dtype, and the rows of
// a weight matrix (embedding lookup). Each dtype has a row in a table of kernels (matmul.cpp);
// layers never test a weight's dtype themselves.
#pragma once
#include <cstdint>

#include "core/weight.h"

namespace hippo {

// y (rows, W.rows) = x (rows, W.cols) W^T, or y += x W^T when `accumulate`. fp32: oneDNN (the
// small-rows kernel for few rows); bf16: kernels/gemm_bf16.h with the default activation mode.
void matmul_xwt(const float* x, int64_t rows, const WeightView& W, float* y,
                bool accumulate = false);

// The same for outputs [begin, end) only (columns of y), at most kStepRowsMax rows, on the
// calling thread: no parallel region is opened, so threads already inside one (a decoding step,
// core/team.h) each take a range. Any split of [0, W.rows) gives matmul_xwt's result for these
// rows bit for bit where matmul_xwt takes the small-rows kernels (AVX-512; the q8 and portable
// bf16 loops everywhere); fp32 without AVX-512 runs oneDNN on the range's rows of W (equal up to
// rounding).
inline constexpr int64_t kStepRowsMax = 16;
void matmul_xwt_part(const float* x, int64_t rows, const WeightView& W, float* y, int64_t begin,
                     int64_t end, bool accumulate = false);

// y (n, W.cols) = rows ids[0..n) of W, widened to fp32. An id outside [0, W.rows) is an Error.
void gather_rows(const int32_t* ids, int64_t n, const WeightView& W, float* y);

}  // namespace hippo
