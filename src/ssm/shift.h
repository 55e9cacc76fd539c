// The shift SSM of spec §2: A is the N×N shift matrix, so the SSM is a learned causal FIR
// filter with N taps, K[h,j] = sum_{m=0}^{N-1-j} B[h,m] C[h,m+j]. The skip D lives in the layer.
// Parameters: B (H, N), C (1, H, N).
#pragma once
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

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
// (d null: no skip term). y may be u. A decode step calls this once per run of channels: the
// calls per channel (and active_isa() in each) were 0.7 of the shift SSM's 6.8% of a q8 decode
// step.
void shift_step_channels(const float* b, const float* c, float* s, const float* u,
                         const float* d, float* y, int64_t n, int N);

// The ring form of the step (issue 18, session 15). A state that began at zero is a function
// of the last N inputs alone: s[n] = sum_{j<=n} B[n-j] u_{t-j}, so y_t = sum_n C[n] s[n] =
// sum_{j<N} K[j] u_{t-j}. Kept as a ring of those inputs, a step reads K and the ring and
// writes one input per channel: half the bytes of the shift-and-update step (B, C and the
// state read, the state written).
// Ring layout of one sequence: (N, H), slot-major, so that a step is whole vectors across
// channels; the newest input at slot `pos`, input u_{t-j} at slot (pos + j) % N.

// The step parameters of every channel from one snapshot of B and C: shared, read-only, by the
// states that step with them (ShiftKernel::step_params()).
struct ShiftStepParams {
  int H = 0, N = 0;
  std::vector<float> B, C;  // (H, N): the values the snapshot was made from
  std::vector<float> KT;    // (N, H): KT[j * H + h] = K[h, j], from ShiftKernel::kernel
};

// Channels [c0, c1) of one sequence's ring, whose slot `pos` already holds this step's inputs:
// y[c] = sum_{j<N} KT[j][c] ring[(pos + j) % N][c] (summed in order of j) + d[c] ring[pos][c]
// (d null: no skip term). d and y point at channel 0: y[c] is written for c in [c0, c1).
void shift_ring_step(const float* KT, const float* ring, int pos, int H, int N, const float* d,
                     float* y, int64_t c0, int64_t c1);

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
  // The step parameters of the current values of B and C: the one made last while they are
  // unchanged (bitwise), else a new one. Thread-safe.
  std::shared_ptr<const ShiftStepParams> step_params() const;

  // The state s (N reals) of channel h that the ring (of one sequence, newest input at `pos`)
  // stands for: s[n] = sum_{j<=n} b[n-j] u_{t-j}, b the channel's row of B (H, N); summed in
  // double. A state kept as a ring is turned back into s with this to be saved or prefilled from.
  static void ring_state(const float* b, const float* ring, int pos, int H, int N, int h, float* s);

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
  mutable std::mutex step_mutex_;  // guards step_cache_ (step_params() is called by threads)
  mutable std::shared_ptr<const ShiftStepParams> step_cache_;
};

}  // namespace hippo
