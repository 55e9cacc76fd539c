// Direct short causal convolution per channel, for the N-tap shift SSM (spec §2): with
// N = 64 taps this is cheaper than an FFT. Layout (B, H, L): channel-major, each sequence
// contiguous. Also the plain reference that the FFT convolution is tested against.
#pragma once

namespace hippo {

// y[b,h,t] = sum_{j <= min(t, N-1)} K[h,j] u[b,h,t-j].  K: (H, N).
void causal_conv_direct(const float* u, const float* K, float* y, int B, int H, int L, int N);

// du (overwritten)[b,h,s] = sum_j K[h,j] dy[b,h,s+j];
// dK_accum (+=)[h,j] = sum_{b,t} dy[b,h,t] u[b,h,t-j].
void causal_conv_direct_backward(const float* u, const float* K, const float* dy, float* du,
                                 float* dK_accum, int B, int H, int L, int N);

}  // namespace hippo
