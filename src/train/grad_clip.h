// Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_) and the finiteness check
// that stops training on NaN/Inf.
#pragma once
#include <string>

#include "nn/module.h"

namespace hippo {

// Global L2 norm of all gradients (double accumulation).
double grad_norm(const ParamList& params);
// Scales gradients by max_norm / (norm + 1e-6) when norm > max_norm. Returns the norm before.
double clip_grad_norm(const ParamList& params, double max_norm);
// Name of the first parameter whose gradient holds a NaN or Inf, or "" if none.
std::string first_nonfinite_grad(const ParamList& params);

}  // namespace hippo
