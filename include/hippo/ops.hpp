// hippo's CPU FlashConv kernels as plain functions, for frameworks that bring their own
// tensors and autograd (the Python package's hippo.ops wraps these as PyTorch ops).
//
// Layout: activations (B, H, L) row-major (the sequence contiguous), kernels (H, L), skip
// D (H). Convolutions are causal: (k * u)[t] = sum_{s<=t} k[t-s] u[s]. float32 only; threads
// as hippo::set_num_threads. Backward outputs are overwritten (not accumulated).
#pragma once

namespace hippo::ops {

// y = k * u + D ⊙ u.
void fftconv_forward(const float* u, const float* k, const float* D, float* y, int B, int H,
                     int L);
// Gradients of sum(dy ⊙ y): du (B, H, L), dk (H, L), dD (H).
void fftconv_backward(const float* u, const float* k, const float* D, const float* dy, float* du,
                      float* dk, float* dD, int B, int H, int L);

// The H3 inner op (head_dim 1): y = q ⊙ (K * (k ⊙ v) + D ⊙ (k ⊙ v)); k is the shift SSM's
// output, K the diagonal SSM's kernel.
void h3_conv_forward(const float* q, const float* k, const float* v, const float* K,
                     const float* D, float* y, int B, int H, int L);
// Gradients of sum(dy ⊙ y): dq, dk, dv (B, H, L), dK (H, L), dD (H).
void h3_conv_backward(const float* q, const float* k, const float* v, const float* K,
                      const float* D, const float* dy, float* dq, float* dk, float* dv, float* dK,
                      float* dD, int B, int H, int L);

}  // namespace hippo::ops
