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

// y (n, W.cols) = rows ids[0..n) of W, widened to fp32. An id outside [0, W.rows) is an Error.
void gather_rows(const int32_t* ids, int64_t n, const WeightView& W, float* y);

}  // namespace hippo
