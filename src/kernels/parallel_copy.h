// Whole-tensor element-wise passes of training (copies of activations saved for the backward,
// residual adds, zeroing gradients), split over the OpenMP threads in equal contiguous ranges
// when large enough (kernels/parallel_work.h). Each element's result is the same whatever the
// thread count: no sums across elements.
#pragma once
#include <cstdint>

namespace hippo {

void parallel_copy(float* dst, const float* src, int64_t n);
// y[i] += x[i].
void parallel_add(float* y, const float* x, int64_t n);
void parallel_fill(float* y, float v, int64_t n);
// y[i] *= s.
void parallel_scale(float* y, float s, int64_t n);

}  // namespace hippo
