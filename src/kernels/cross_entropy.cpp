#include "kernels/cross_entropy.h"

#include <cmath>

#include "core/error.h"

namespace hippo {

double cross_entropy(const float* logits, const int32_t* targets, float* dlogits, int64_t rows,
                     int64_t V, int64_t* n_correct, int64_t* n_valid) {
  // Validate and count first: the gradient scale needs the count, and errors must not be
  // thrown from inside the parallel region.
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t t = targets[r];
    HIPPO_CHECK(t < V, "cross_entropy: target id ", t, " at row ", r,
                " is out of range for vocabulary size ", V);
    if (t >= 0) ++count;
  }
  const double scale = count > 0 ? 1.0 / static_cast<double>(count) : 0.0;
  double loss = 0;
  int64_t correct = 0;
#pragma omp parallel for schedule(static) reduction(+ : loss, correct) if (rows * V > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = logits + r * V;
    float* g = dlogits ? dlogits + r * V : nullptr;
    const int32_t t = targets[r];
    if (t < 0) {
      if (g)
        for (int64_t j = 0; j < V; ++j) g[j] = 0.0f;
      continue;
    }
    float m = x[0];
    int64_t arg = 0;
    for (int64_t j = 1; j < V; ++j)
      if (x[j] > m) {
        m = x[j];
        arg = j;
      }
    double s = 0;
    for (int64_t j = 0; j < V; ++j) s += std::exp(static_cast<double>(x[j] - m));
    const double lse = m + std::log(s);
    loss += lse - x[t];
    correct += arg == t ? 1 : 0;
    if (g) {
      for (int64_t j = 0; j < V; ++j)
        g[j] = static_cast<float>(std::exp(static_cast<double>(x[j]) - lse) * scale);
      g[t] -= static_cast<float>(scale);
    }
  }
  if (n_correct) *n_correct = correct;
  if (n_valid) *n_valid = count;
  return loss * scale;
}

}  // namespace hippo
