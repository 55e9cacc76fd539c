// Numerically stable softmax along the last axis.
#pragma once
#include <cstdint>

namespace hippo {

// One row of n values; y may alias x.
void softmax_row(const float* x, float* y, int64_t n);
// Given y = softmax(x) and dy: dx = y * (dy - sum(dy * y)). dx may alias dy.
void softmax_backward_row(const float* y, const float* dy, float* dx, int64_t n);

// (rows, n), rows in parallel.
void softmax_forward(const float* x, float* y, int64_t rows, int64_t n);
void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t n);

}  // namespace hippo
