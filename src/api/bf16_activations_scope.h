// The process-wide bf16-activation mode (kernels/gemm_bf16.h) set for one library call and put
// back when it returns or throws, so that a `fast_bf16` option does not outlive its call.
#pragma once
#include "kernels/gemm_bf16.h"

namespace hippo::api {

class Bf16ActivationsScope {
 public:
  explicit Bf16ActivationsScope(bool rounded) : before_(bf16_activations()) {
    if (rounded) set_bf16_activations(Bf16Activations::RoundedToBf16);
  }
  ~Bf16ActivationsScope() { set_bf16_activations(before_); }
  Bf16ActivationsScope(const Bf16ActivationsScope&) = delete;
  Bf16ActivationsScope& operator=(const Bf16ActivationsScope&) = delete;

 private:
  Bf16Activations before_;
};

}  // namespace hippo::api
