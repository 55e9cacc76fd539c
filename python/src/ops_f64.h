// float64 path of hippo.ops: direct causal convolutions in double precision, O(B H L^2).
// hippo's FlashConv kernels are float32 only; this exact path is what float64 tensors get
// (torch.autograd.gradcheck needs float64). Same contracts as include/hippo/ops.hpp.
#pragma once

namespace hippo::py {

void fftconv_forward_f64(const double* u, const double* k, const double* D, double* y, int B,
                         int H, int L);
void fftconv_backward_f64(const double* u, const double* k, const double* D, const double* dy,
                          double* du, double* dk, double* dD, int B, int H, int L);
void h3_conv_forward_f64(const double* q, const double* k, const double* v, const double* K,
                         const double* D, double* y, int B, int H, int L);
void h3_conv_backward_f64(const double* q, const double* k, const double* v, const double* K,
                          const double* D, const double* dy, double* dq, double* dk, double* dv,
                          double* dK, double* dD, int B, int H, int L);

}  // namespace hippo::py
