// The shift SSM of spec §2: A is the N×N shift matrix, so the SSM is a learned causal FIR
// filter with N taps, K[h,j] = sum_{m=0}^{N-1-j} B[h,m] C[h,m+j]. The skip D lives in the layer.
// Parameters: B (H, N), C (1, H, N).
#pragma once
#include <cstring>

#include "core/cpu_features.h"
#include "core/param.h"
#include "core/rng.h"

namespace hippo {

// ShiftKernel::step on raw arrays (shift.cpp): s <- shift(s) + b u, returns sum_n c_n s_n.
// Picks the AVX-512 path (N a multiple of 16), the AVX2 build of the portable loop or the
// portable loop itself from active_isa() (core/cpu_features.h).
float shift_step(const float* b, const float* c, float* s, float u, int N);

// shift_step over n consecutive channels, the path picked once: channel i has its B and C rows
// at b + i N, c + i N and its state at s + i N, and y[i] = shift_step(..., u[i], N) + d[i] u[i]
// (d null: no skip term). y may be u. A decode step calls this once per run of channels: one
// call per channel (and active_isa() in each) was a fifth of the shift SSM's time.
void shift_step_channels(const float* b, const float* c, float* s, const float* u,
                         const float* d, float* y, int64_t n, int N);

class ShiftKernel : public Module {
 public:
  ShiftKernel(int H, int N);

  // Names "B", "C" after `prefix` (H3 passes "ssm_k_kernel.kernel.").
  void collect_params(const std::string& prefix, ParamList& out) override;

  // B = e1, C ~ U(-1/sqrt(N), 1/sqrt(N)).
  void init(Rng& rng);

  // K: (H, N).
  void kernel(float* K) const;
  // Adds dLoss/dB and dLoss/dC given dK (H, N).
  void kernel_backward(const float* dK);

  // One recurrent step of channel h: s <- shift(s) + B u, returns sum_n C_n s_n (without D).
  // s: N reals.
  float step(int h, float* s, float u) const {
    const float* b = B.value.data() + static_cast<int64_t>(h) * N_;
    const float* c = C.value.data() + static_cast<int64_t>(h) * N_;
    return shift_step(b, c, s, u, N_);
  }
  // step() of channels h0 .. h0 + n - 1 (states N apart from s), with the skip term d[i] u[i]
  // added where d is not null; y may be u (shift_step_channels).
  void step_channels(int h0, int64_t n, float* s, const float* u, const float* d, float* y) const {
    const int64_t off = static_cast<int64_t>(h0) * N_;
    shift_step_channels(B.value.data() + off, C.value.data() + off, s, u, d, y, n, N_);
  }
  // The plain path step() is tested against: shift, then update and read out.
  float step_reference(int h, float* s, float u) const {
    const float* b = B.value.data() + static_cast<int64_t>(h) * N_;
    const float* c = C.value.data() + static_cast<int64_t>(h) * N_;
    std::memmove(s + 1, s, sizeof(float) * (N_ - 1));
    s[0] = 0.0f;
    float y = 0.0f;
    for (int n = 0; n < N_; ++n) {
      s[n] += b[n] * u;
      y += c[n] * s[n];
    }
    return y;
  }

  // State of channel h after the prompt u[0..L) from the zero state:
  // s[n] = sum_{m<=n} B[m] u[L-1-(n-m)] (terms with negative index are zero). s: N reals.
  void prompt_state(int h, const float* u, int L, float* s) const;
  // The state s held before u[0..L) moved on over it: shift^L(s) + prompt_state(u), in place.
  void advance_state(int h, const float* u, int L, float* s) const;
  // What the state s held before a sequence adds to its first outputs (without D):
  // y[j] += sum_{n > j} C_n s[n-j-1] for j < min(L, N-1). Later outputs do not see it.
  void add_state_output(int h, const float* s, int L, float* y) const;

  int H() const { return H_; }
  int N() const { return N_; }

  Param B, C;

 private:
  int H_, N_;
};

}  // namespace hippo
