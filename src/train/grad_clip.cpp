#include "train/grad_clip.h"

#include <cmath>

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
      float* g = p.param->grad.data();
      const int64_t n = p.param->grad.numel();
      for (int64_t i = 0; i < n; ++i) g[i] *= scale;
    }
  }
  return norm;
}

std::string first_nonfinite_grad(const ParamList& params) {
  for (auto& p : params) {
    const float* g = p.param->grad.data();
    const int64_t n = p.param->grad.numel();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(g[i])) return p.name;
  }
  return "";
}

}  // namespace hippo
