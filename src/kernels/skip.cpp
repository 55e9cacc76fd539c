#include "kernels/skip.h"

#include <cstdint>

#include "kernels/parallel_work.h"

namespace hippo {

void skip_forward(const float* u, const float* D, float* y, int G, int H, int L) {
  const int64_t n = static_cast<int64_t>(G) * H * L;
#pragma omp parallel for collapse(2) schedule(static) if (worth_parallel(n))
  for (int g = 0; g < G; ++g)
    for (int h = 0; h < H; ++h) {
      const int64_t off = (static_cast<int64_t>(g) * H + h) * L;
      for (int l = 0; l < L; ++l) y[off + l] += D[h] * u[off + l];
    }
}

void skip_backward(const float* u, const float* D, const float* dy, float* du, float* dD, int G,
                   int H, int L) {
  const int64_t n = static_cast<int64_t>(G) * H * L;
#pragma omp parallel for schedule(static) if (worth_parallel(n))
  for (int h = 0; h < H; ++h) {
    double acc = 0.0;
    for (int g = 0; g < G; ++g) {
      const int64_t off = (static_cast<int64_t>(g) * H + h) * L;
      for (int l = 0; l < L; ++l) {
        acc += static_cast<double>(dy[off + l]) * u[off + l];
        du[off + l] += D[h] * dy[off + l];
      }
    }
    dD[h] += static_cast<float>(acc);
  }
}

}  // namespace hippo
