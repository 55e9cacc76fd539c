#include "kernels/parallel_copy.h"

#include <cmath>
#include <cstring>

#include "kernels/parallel_work.h"

namespace hippo {

void parallel_copy(float* dst, const float* src, int64_t n) {
  parallel_range(n, worth_parallel(n), [&](int64_t b, int64_t e) {
    std::memcpy(dst + b, src + b, sizeof(float) * static_cast<size_t>(e - b));
  });
}

void parallel_add(float* y, const float* x, int64_t n) {
  parallel_range(n, worth_parallel(n), [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) y[i] += x[i];
  });
}

void parallel_fill(float* y, float v, int64_t n) {
  parallel_range(n, worth_parallel(n), [&](int64_t b, int64_t e) {
    if (v == 0.0f && !std::signbit(v)) {  // +0.0f is all zero bits
      std::memset(y + b, 0, sizeof(float) * static_cast<size_t>(e - b));
      return;
    }
    for (int64_t i = b; i < e; ++i) y[i] = v;
  });
}

void parallel_scale(float* y, float s, int64_t n) {
  parallel_range(n, worth_parallel(n), [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) y[i] *= s;
  });
}

}  // namespace hippo
