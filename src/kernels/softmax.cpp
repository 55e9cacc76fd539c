#include "kernels/softmax.h"

#include <cmath>

#include "kernels/parallel_work.h"
#include "kernels/vec_math.h"

namespace hippo {

void softmax_row(const float* x, float* y, int64_t n) {
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < n; ++j) m = x[j] > m ? x[j] : m;
  double s = 0;
  for (int64_t j0 = 0; j0 < n; j0 += kSumChunk) {
    const int64_t j1 = j0 + kSumChunk < n ? j0 + kSumChunk : n;
    float cs = 0;
#pragma omp simd reduction(+ : cs)
    for (int64_t j = j0; j < j1; ++j) {
      const float e = exp_fast(x[j] - m);
      y[j] = e;
      cs += e;
    }
    s += cs;
  }
  const float inv = static_cast<float>(1.0 / s);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) y[j] *= inv;
}

void softmax_backward_row(const float* y, const float* dy, float* dx, int64_t n) {
  double s = 0;
  for (int64_t j0 = 0; j0 < n; j0 += kSumChunk) {
    const int64_t j1 = j0 + kSumChunk < n ? j0 + kSumChunk : n;
    float cs = 0;
#pragma omp simd reduction(+ : cs)
    for (int64_t j = j0; j < j1; ++j) cs += dy[j] * y[j];
    s += cs;
  }
  const float sf = static_cast<float>(s);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dx[j] = y[j] * (dy[j] - sf);
}

void softmax_forward(const float* x, float* y, int64_t rows, int64_t n) {
#pragma omp parallel for schedule(static) if (worth_parallel(rows * n))
  for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * n, y + r * n, n);
}

void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t n) {
#pragma omp parallel for schedule(static) if (worth_parallel(rows * n))
  for (int64_t r = 0; r < rows; ++r) softmax_backward_row(y + r * n, dy + r * n, dx + r * n, n);
}

}  // namespace hippo
