#include "train/adamw.h"

#include <algorithm>
#include <cmath>

#include "kernels/parallel_work.h"

namespace hippo {

AdamW::AdamW(ParamList params, AdamWOptions opt) : params_(std::move(params)), opt_(opt) {
  for (auto& p : params_) {
    m_.push_back(Tensor::zeros(p.param->value.shape()));
    v_.push_back(Tensor::zeros(p.param->value.shape()));
  }
}

float AdamW::lr_for(ParamKind k, float lr_scale) const {
  float base = k == ParamKind::SsmDynamics ? std::min(opt_.lr, opt_.ssm_lr_cap) : opt_.lr;
  return base * lr_scale;
}

float AdamW::decay_for(ParamKind k) const { return k == ParamKind::Decay ? opt_.weight_decay : 0.0f; }

void AdamW::step(float lr_scale) {
  ++t_;
  const double bc1 = 1.0 - std::pow(static_cast<double>(opt_.beta1), static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(static_cast<double>(opt_.beta2), static_cast<double>(t_));
  const float b1 = opt_.beta1, b2 = opt_.beta2, eps = opt_.eps;
  const float sqrt_bc2 = static_cast<float>(std::sqrt(bc2));
  for (size_t i = 0; i < params_.size(); ++i) {
    Param& p = *params_[i].param;
    const float lr = lr_for(p.kind, lr_scale);
    const float wd = decay_for(p.kind);
    const float step_size = static_cast<float>(lr / bc1);
    float* w = p.value.data();
    const float* g = p.grad.data();
    float* m = m_[i].data();
    float* v = v_[i].data();
    const int64_t n = p.value.numel();
    const float shrink = 1.0f - lr * wd;
#pragma omp parallel for schedule(static) if (worth_parallel_optimizer(n))
    for (int64_t j = 0; j < n; ++j) {
      w[j] *= shrink;
      m[j] = b1 * m[j] + (1.0f - b1) * g[j];
      v[j] = b2 * v[j] + (1.0f - b2) * g[j] * g[j];
      const float denom = std::sqrt(v[j]) / sqrt_bc2 + eps;
      w[j] -= step_size * m[j] / denom;
    }
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_) p.param->grad.fill(0.0f);
}

}  // namespace hippo
