#include "kernels/softmax.h"

#include <cmath>

namespace hippo {

void softmax_row(const float* x, float* y, int64_t n) {
  float m = -INFINITY;
  for (int64_t j = 0; j < n; ++j) m = x[j] > m ? x[j] : m;
  double s = 0;
  for (int64_t j = 0; j < n; ++j) {
    const float e = std::exp(x[j] - m);
    y[j] = e;
    s += e;
  }
  const float inv = static_cast<float>(1.0 / s);
  for (int64_t j = 0; j < n; ++j) y[j] *= inv;
}

void softmax_backward_row(const float* y, const float* dy, float* dx, int64_t n) {
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += static_cast<double>(dy[j]) * y[j];
  const float sf = static_cast<float>(s);
  for (int64_t j = 0; j < n; ++j) dx[j] = y[j] * (dy[j] - sf);
}

void softmax_forward(const float* x, float* y, int64_t rows, int64_t n) {
#pragma omp parallel for schedule(static) if (rows * n > 32768)
  for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * n, y + r * n, n);
}

void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t n) {
#pragma omp parallel for schedule(static) if (rows * n > 32768)
  for (int64_t r = 0; r < rows; ++r) softmax_backward_row(y + r * n, dy + r * n, dx + r * n, n);
}

}  // namespace hippo
