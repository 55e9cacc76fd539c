#include "nn/layernorm.h"

#include <cstring>

#include "core/error.h"
#include "core/phase_profile.h"
#include "kernels/layernorm.h"
#include "kernels/parallel_copy.h"

namespace hippo {

LayerNorm::LayerNorm(int d, float eps) : d_(d), eps_(eps) {
  HIPPO_CHECK(d > 0, "LayerNorm: width d must be positive, got ", d);
  weight = make_param({d}, ParamKind::NoDecay);
  bias = make_param({d}, ParamKind::NoDecay);
  init();
}

void LayerNorm::collect_params(const std::string& prefix, ParamList& out) {
  out.push_back({prefix + "weight", &weight});
  out.push_back({prefix + "bias", &bias});
}

void LayerNorm::init() {
  weight.value.fill(1.0f);
  bias.value.fill(0.0f);
}

void LayerNorm::forward(const float* x, float* y, int64_t rows) {
  const size_t n = static_cast<size_t>(rows) * d_;
  // A copy, not a pointer: callers update the residual stream in place after this.
  float* xs = x_.get(n);
  {
    prof::Scope ps("norm.copy");
    parallel_copy(xs, x, static_cast<int64_t>(n));
  }
  rows_ = rows;
  layernorm_forward(xs, weight.value.data(), bias.value.data(), y, mean_.get(rows),
                    rstd_.get(rows), rows, d_, eps_);
}

void LayerNorm::forward_inference(const float* x, float* y, int64_t rows, Buffer& stats) const {
  float* mean = stats.get(2 * static_cast<size_t>(rows));
  layernorm_forward(x, weight.value.data(), bias.value.data(), y, mean, mean + rows, rows, d_,
                    eps_);
}

void LayerNorm::forward_inference(const float* x, float* y, int64_t rows, float* stats) const {
  layernorm_forward(x, weight.value.data(), bias.value.data(), y, stats, stats + rows, rows, d_,
                    eps_);
}

void LayerNorm::backward(const float* dy, float* dx) {
  HIPPO_CHECK(rows_ > 0, "LayerNorm: backward called before forward");
  layernorm_backward(dy, x_.data(), weight.value.data(), mean_.data(), rstd_.data(), dx,
                     weight.grad.data(), bias.grad.data(), rows_, d_);
}

void LayerNorm::release_activations() { release_buffers(x_, mean_, rstd_); }

}  // namespace hippo
