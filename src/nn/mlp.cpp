#include "nn/mlp.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/phase_profile.h"
#include "kernels/gelu.h"
#include "kernels/parallel_copy.h"

namespace hippo {

Mlp::Mlp(int d) : fc1(d, 4 * d), fc2(4 * d, d), d_(d) {
  HIPPO_CHECK(d > 0, "Mlp: width d must be positive, got ", d);
}

void Mlp::collect_params(const std::string& prefix, ParamList& out) {
  fc1.collect_params(prefix + "fc1.", out);
  fc2.collect_params(prefix + "fc2.", out);
}

void Mlp::init(Rng& rng, int n_layer, float std) {
  HIPPO_CHECK(n_layer > 0, "Mlp: n_layer must be positive, got ", n_layer);
  fc1.init(rng, std);
  fc2.init(rng, static_cast<float>(std / std::sqrt(2.0 * n_layer)));
}

void Mlp::run(const float* x, float* y, int64_t rows, float* pre, float* act) const {
  fc1.forward(x, pre, rows);
  {
    prof::Scope ps("mlp.gelu");
    gelu_forward(pre, act, rows * 4 * d_);
  }
  fc2.forward(act, y, rows);
}

void Mlp::forward(const float* x, float* y, int64_t rows) {
  HIPPO_CHECK(x != y, "Mlp: forward output must not alias its input");
  const size_t n = static_cast<size_t>(rows) * d_, h = 4 * n;
  float* xs = x_.get(n);
  {
    prof::Scope ps("mlp.copy");
    parallel_copy(xs, x, static_cast<int64_t>(n));
  }
  rows_ = rows;
  run(xs, y, rows, pre_.get(h), act_.get(h));
}

void Mlp::forward_inference(const float* x, float* y, int64_t rows, Buffer& hidden) const {
  HIPPO_CHECK(x != y, "Mlp: forward output must not alias its input");
  const int64_t block = std::min(rows, kInferenceRows);
  // Not zeroed: fc1 writes every hidden row it is given before GELU and fc2 read it.
  float* act = hidden.get_uninit(static_cast<size_t>(block) * 4 * d_);
  for (int64_t r0 = 0; r0 < rows; r0 += block) {  // rows are independent
    const int64_t m = std::min(block, rows - r0);
    run(x + r0 * d_, y + r0 * d_, m, act, act);  // the activation in place of the pre-activation
  }
}

void Mlp::forward_team(const float* x, float* y, int64_t rows, float* hidden,
                       const Team& team) const {
  const int64_t h = 4 * static_cast<int64_t>(d_);
  const auto [h0, h1] = team.share(h);
  fc1.forward_part(x, hidden, rows, h0, h1);
  for (int64_t r = 0; r < rows; ++r) gelu_forward(hidden + r * h + h0, hidden + r * h + h0, h1 - h0);
  team.barrier();  // fc2 reads every thread's activations
  const auto [c0, c1] = team.share(d_);
  fc2.forward_part(hidden, y, rows, c0, c1);
}

void Mlp::backward(const float* dy, float* dx) {
  HIPPO_CHECK(rows_ > 0, "Mlp: backward called before forward");
  const size_t h = static_cast<size_t>(rows_) * 4 * d_;
  float* g = grad_.get(h);
  fc2.backward(act_.data(), dy, g, rows_);
  {
    prof::Scope ps("mlp.gelu");
    gelu_backward(pre_.data(), g, g, static_cast<int64_t>(h));
  }
  fc1.backward(x_.data(), g, dx, rows_);
}

void Mlp::release_activations() { release_buffers(x_, pre_, act_, grad_); }

}  // namespace hippo
