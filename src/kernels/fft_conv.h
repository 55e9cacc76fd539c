// Long causal convolution by FFT (FFTW), the plain reference path for the diagonal SSM
// (spec §7 idea 1 without the fusion): y = irfft(rfft(u, n) * rfft(K, n))[:L], n >= 2L so the
// circular convolution equals the linear one on the first L outputs.
// Layout (B, H, L) channel-major, K: (H, L). Parallel over channels (OpenMP).
#pragma once
#include <mutex>

namespace hippo {

// y[b,h,t] = sum_{s<=t} K[h,t-s] u[b,h,s].
void fft_causal_conv(const float* u, const float* K, float* y, int B, int H, int L);

// du (overwritten)[b,h,s] = sum_{t>=s} K[h,t-s] dy[b,h,t];
// dK_accum (+=)[h,j] = sum_{b,t} dy[b,h,t] u[b,h,t-j].
void fft_causal_conv_backward(const float* u, const float* K, const float* dy, float* du,
                              float* dK_accum, int B, int H, int L);

// FFTW's planner is not thread safe: every planner call in the process must hold this mutex.
std::mutex& fftw_planner_mutex();

// Smallest power of two >= 2L (the FFT size used above).
int fft_conv_size(int L);

}  // namespace hippo
