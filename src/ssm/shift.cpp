#include "ssm/shift.h"

#include <cmath>

#include "core/error.h"

namespace hippo {

ShiftKernel::ShiftKernel(int H, int N) : H_(H), N_(N) {
  HIPPO_CHECK(H >= 1, "ShiftKernel: channels H=", H, " must be >= 1");
  HIPPO_CHECK(N >= 1, "ShiftKernel: d_state N=", N, " must be >= 1");
  B = make_param({H, N}, ParamKind::SsmDynamics);
  C = make_param({1, H, N}, ParamKind::Decay);
}

void ShiftKernel::collect_params(const std::string& prefix, ParamList& out) {
  out.push_back({prefix + "B", &B});
  out.push_back({prefix + "C", &C});
}

void ShiftKernel::init(Rng& rng) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(N_));
  for (int h = 0; h < H_; ++h)
    for (int n = 0; n < N_; ++n) {
      const int64_t i = static_cast<int64_t>(h) * N_ + n;
      B.value[i] = n == 0 ? 1.0f : 0.0f;
      C.value[i] = rng.uniform(-bound, bound);
    }
}

void ShiftKernel::kernel(float* K) const {
  for (int h = 0; h < H_; ++h) {
    const float* b = B.value.data() + static_cast<int64_t>(h) * N_;
    const float* c = C.value.data() + static_cast<int64_t>(h) * N_;
    float* k = K + static_cast<int64_t>(h) * N_;
    for (int j = 0; j < N_; ++j) {
      double acc = 0.0;
      for (int m = 0; m + j < N_; ++m) acc += static_cast<double>(b[m]) * c[m + j];
      k[j] = static_cast<float>(acc);
    }
  }
}

void ShiftKernel::kernel_backward(const float* dK) {
  for (int h = 0; h < H_; ++h) {
    const int64_t off = static_cast<int64_t>(h) * N_;
    const float* b = B.value.data() + off;
    const float* c = C.value.data() + off;
    float* gb = B.grad.data() + off;
    float* gc = C.grad.data() + off;
    const float* g = dK + off;
    for (int m = 0; m < N_; ++m) {
      double acc = 0.0;
      for (int j = 0; m + j < N_; ++j) acc += static_cast<double>(g[j]) * c[m + j];
      gb[m] += static_cast<float>(acc);
    }
    for (int n = 0; n < N_; ++n) {
      double acc = 0.0;  // C[n] meets B[m] at tap j = n - m
      for (int m = 0; m <= n; ++m) acc += static_cast<double>(g[n - m]) * b[m];
      gc[n] += static_cast<float>(acc);
    }
  }
}

void ShiftKernel::prompt_state(int h, const float* u, int L, float* s) const {
  const float* b = B.value.data() + static_cast<int64_t>(h) * N_;
  for (int n = 0; n < N_; ++n) {
    double acc = 0.0;
    for (int m = 0; m <= n; ++m) {
      const int t = L - 1 - (n - m);
      if (t >= 0) acc += static_cast<double>(b[m]) * u[t];
    }
    s[n] = static_cast<float>(acc);
  }
}

}  // namespace hippo
