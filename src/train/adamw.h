// AdamW with the parameter groups of spec §1/§4, PyTorch's update rule exactly
// (torch.optim.AdamW, amsgrad off), so one step can be checked against it.
#pragma once
#include <string>
#include <vector>

#include "nn/module.h"

namespace hippo {

struct AdamWOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
  float ssm_lr_cap = 1e-3f;  // SSM dynamics train at min(lr, this), without weight decay
};

class AdamW {
 public:
  AdamW(ParamList params, AdamWOptions opt);
  // One update with learning-rate multiplier `lr_scale` (from the schedule).
  void step(float lr_scale = 1.0f);
  void zero_grad();
  int64_t steps() const { return t_; }

  // For checkpoints: first and second moments, in the order of params().
  const ParamList& params() const { return params_; }
  std::vector<Tensor>& first_moments() { return m_; }
  std::vector<Tensor>& second_moments() { return v_; }
  const std::vector<Tensor>& first_moments() const { return m_; }
  const std::vector<Tensor>& second_moments() const { return v_; }
  void set_steps(int64_t t) { t_ = t; }
  const AdamWOptions& options() const { return opt_; }

  // Learning rate and weight decay a parameter of this kind gets at lr_scale.
  float lr_for(ParamKind k, float lr_scale) const;
  float decay_for(ParamKind k) const;

 private:
  ParamList params_;
  AdamWOptions opt_;
  std::vector<Tensor> m_, v_;
  int64_t t_ = 0;
};

}  // namespace hippo
