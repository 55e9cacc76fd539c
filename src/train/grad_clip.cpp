#include "train/grad_clip.h"

#include <algorithm>
#include <cmath>

#include "kernels/parallel_copy.h"
#include "kernels/parallel_work.h"

namespace hippo {

double grad_norm(const ParamList& params) {
  double sq = 0;
  for (auto& p : params) {
    const float* g = p.param->grad.data();
    const int64_t n = p.param->grad.numel();
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (worth_parallel_optimizer(n))
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(g[i]) * g[i];
    sq += s;
  }
  return std::sqrt(sq);
}

double clip_grad_norm(const ParamList& params, double max_norm) {
  const double norm = grad_norm(params);
  if (max_norm > 0 && norm > max_norm) {
    const float scale = static_cast<float>(max_norm / (norm + 1e-6));
    for (auto& p : params) {
      parallel_scale(p.param->grad.data(), scale, p.param->grad.numel());
    }
  }
  return norm;
}

std::string first_nonfinite_grad(const ParamList& params) {
  for (auto& p : params) {
    const float* g = p.param->grad.data();
    const int64_t n = p.param->grad.numel();
    // x * 0 is 0 for finite x and NaN for Inf and NaN: one vectorised pass, split over threads.
    int bad = 0;
#pragma omp parallel for reduction(| : bad) schedule(static) if (worth_parallel_optimizer(n))
    for (int64_t c = 0; c < n; c += 4096) {
      const int64_t e = std::min(n, c + 4096);
      float z = 0.0f;
#pragma omp simd reduction(+ : z)
      for (int64_t i = c; i < e; ++i) z += g[i] * 0.0f;
      bad |= z != 0.0f || std::isnan(z);
    }
    if (bad) return p.name;
  }
  return "";
}

}  // namespace hippo
