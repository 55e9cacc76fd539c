// GELU, tanh approximation (PyTorch approximate='tanh', the MLP activation of spec §4):
// gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Elementwise over n values.
#pragma once
#include <cstdint>

namespace hippo {

void gelu_forward(const float* x, float* y, int64_t n);
// dx = dy * gelu'(x). dx may alias dy.
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n);

}  // namespace hippo
