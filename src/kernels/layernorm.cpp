#include "kernels/layernorm.h"

#include <algorithm>
#include <cmath>

#include "kernels/parallel_work.h"

namespace hippo {

void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y,
                       float* mean, float* rstd, int64_t rows, int64_t d, float eps) {
#pragma omp parallel for schedule(static) if (worth_parallel(rows * d))
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    // Two passes (mean, then centred variance): no cancellation for rows with a large mean.
    // Float lanes: a row is at most a few thousand values, and double accumulators stop the
    // loops from vectorising well.
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < d; ++j) s += xr[j];
    const float mu = s / static_cast<float>(d);
    float v = 0;
#pragma omp simd reduction(+ : v)
    for (int64_t j = 0; j < d; ++j) {
      const float c = xr[j] - mu;
      v += c * c;
    }
    const float rs = static_cast<float>(1.0 / std::sqrt(static_cast<double>(v) / d + eps));
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mu) * rs * gamma[j] + beta[j];
    mean[r] = mu;
    rstd[r] = rs;
  }
}

void layernorm_backward(const float* dy, const float* x, const float* gamma, const float* mean,
                        const float* rstd, float* dx, float* dgamma, float* dbeta, int64_t rows,
                        int64_t d) {
  const bool par = worth_parallel(rows * d);
  // Parameter gradients first, so that dx may alias dy. Each thread owns a block of columns:
  // no reduction across threads.
  constexpr int64_t kBlock = 64;
  const int64_t nblocks = (d + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (par)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t j0 = blk * kBlock, j1 = std::min(d, j0 + kBlock);
    double sg[kBlock] = {}, sb[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * d;
      const float* dyr = dy + r * d;
      const float mu = mean[r], rs = rstd[r];
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) {
        sg[j - j0] += dyr[j] * ((xr[j] - mu) * rs);
        sb[j - j0] += dyr[j];
      }
    }
    for (int64_t j = j0; j < j1; ++j) {
      dgamma[j] += static_cast<float>(sg[j - j0]);
      dbeta[j] += static_cast<float>(sb[j - j0]);
    }
  }
  // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
#pragma omp parallel for schedule(static) if (par)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    const float* dyr = dy + r * d;
    float* dxr = dx + r * d;
    const float mu = mean[r], rs = rstd[r];
    float sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
    for (int64_t j = 0; j < d; ++j) {
      const float g = dyr[j] * gamma[j];
      sg += g;
      sgx += g * ((xr[j] - mu) * rs);
    }
    const float mg = sg / static_cast<float>(d), mgx = sgx / static_cast<float>(d);
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) {
      const float xhat = (xr[j] - mu) * rs;
      dxr[j] = rs * (dyr[j] * gamma[j] - mg - xhat * mgx);
    }
  }
}

}  // namespace hippo
