// Row-wise LayerNorm over (rows, d): y = (x - mean) * rstd * gamma + beta, rstd = 1/sqrt(var + eps)
// with the biased variance, as PyTorch's LayerNorm.
#pragma once
#include <cstdint>

namespace hippo {

// mean, rstd: (rows), written for the backward pass.
void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y,
                       float* mean, float* rstd, int64_t rows, int64_t d, float eps = 1e-5f);

// dx is overwritten (may alias dy); dgamma and dbeta (d) are accumulated (+=). mean/rstd from the forward.
void layernorm_backward(const float* dy, const float* x, const float* gamma, const float* mean,
                        const float* rstd, float* dx, float* dgamma, float* dbeta, int64_t rows,
                        int64_t d);

}  // namespace hippo
