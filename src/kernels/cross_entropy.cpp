#include "kernels/cross_entropy.h"

#include <cmath>

#include "core/error.h"
#include "kernels/parallel_work.h"
#include "kernels/vec_math.h"

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
#pragma omp parallel for schedule(static) reduction(+ : loss, correct) if (worth_parallel(rows * V))
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = logits + r * V;
    float* g = dlogits ? dlogits + r * V : nullptr;
    const int32_t t = targets[r];
    if (t < 0) {
      if (g)
        for (int64_t j = 0; j < V; ++j) g[j] = 0.0f;
      continue;
    }
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < V; ++j) m = x[j] > m ? x[j] : m;
    int64_t arg = 0;  // the first maximum, as torch.argmax
    while (arg < V - 1 && x[arg] != m) ++arg;  // bounded: NaN logits never equal m
    const float xt = x[t];  // read before g, which may alias x, is written
    double s = 0;
    for (int64_t j0 = 0; j0 < V; j0 += kSumChunk) {
      const int64_t j1 = j0 + kSumChunk < V ? j0 + kSumChunk : V;
      float cs = 0;
      if (g) {
#pragma omp simd reduction(+ : cs)
        for (int64_t j = j0; j < j1; ++j) {
          const float e = exp_fast(x[j] - m);
          g[j] = e;
          cs += e;
        }
      } else {
#pragma omp simd reduction(+ : cs)
        for (int64_t j = j0; j < j1; ++j) cs += exp_fast(x[j] - m);
      }
      s += cs;
    }
    loss += m + std::log(s) - xt;
    correct += arg == t ? 1 : 0;
    if (g) {
      // softmax / count, minus 1 / count at the target.
      const float k = static_cast<float>(scale / s);
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) g[j] *= k;
      g[t] -= static_cast<float>(scale);
    }
  }
  if (n_correct) *n_correct = correct;
  if (n_valid) *n_valid = count;
  return loss * scale;
}

}  // namespace hippo
