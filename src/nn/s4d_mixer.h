// The S4D baseline mixer: per-channel diagonal SSM with its D skip, GELU (tanh
// approximation), then a d×d "output_linear". Parameters: kernel.kernel.{log_dt, inv_A_real,
// A_imag, B, C}, D, output_linear.{weight, bias}.
#pragma once
#include <complex>
#include <memory>
#include <mutex>
#include <vector>

#include "core/buffer.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "ssm/s4d.h"

namespace hippo {

struct S4DState : MixerState {
  int B = 0;
  std::vector<std::complex<float>> x;  // (B, d, M)
  // The discretised dynamics this state steps with (read-only, shared): set by new_state and
  // prefill, or by the first step of a state that was copied without them.
  std::shared_ptr<const S4DStepParams> dynamics;
  Buffer g;  // step's scratch: in the state, so that threads share nothing writable
  int64_t step_bytes() const override { return static_cast<int64_t>(2 * x.size() * sizeof(x[0])); }

  // What the chunks of one prefill share: the kernel for `len` positions and the dynamics it
  // was made from (see MixerState::release_prefill_cache). Made by S4DMixer::prefill_kernels
  // and shared by every state's prefill while the parameters it was made from (`source`,
  // bitwise) stay the same.
  struct PrefillCache {
    int len = 0;
    S4DKernel::Discrete dyn;
    std::vector<float> K;       // (d, len)
    std::vector<float> source;  // the kernel's parameter values
  };
  std::shared_ptr<const PrefillCache> prefill_cache;
  void release_prefill_cache() override { prefill_cache.reset(); }
};

class S4DMixer : public Mixer {
 public:
  // Initialisation of the diagonal SSM's A used by init() (spec §1: S4D-Lin or S4D-Inv).
  S4DInit ssm_init = S4DInit::Lin;
  // Convolution through the plain FFTW path instead of FlashConv (tests hold the two equal).
  bool reference_conv = false;
  // Prefill keeps its kernel in the layer for the next prefill (see prefill_kernels); false:
  // a fresh one on every call (the reference path, tests).
  bool share_prefill_kernels = true;

  S4DMixer(int d, int d_state = 64, Discretization disc = Discretization::Bilinear);

  void collect_params(const std::string& prefix, ParamList& out) override;
  void forward(const float* x, float* y, int B, int L) override;
  void backward(const float* dy, float* dx) override;
  void release_activations() override;
  // S4D-Lin, D ~ N(0,1), output_linear N(0, 0.02/sqrt(2*n_layer)) with zero bias.
  void init(Rng& rng, int n_layer, float std = 0.02f) override;

  // The state steps with the dynamics of the parameter values at new_state (or prefill).
  std::unique_ptr<MixerState> new_state(int B) const override;
  // The forward pass on x in `ws` continuing from the state (state passing), then the state
  // after it.
  using Mixer::prefill;
  void prefill(const float* x, float* y, int B, int L, MixerState& state,
               Workspace& ws) const override;
  void step_many(const float* x, float* y, std::span<MixerState* const> states) const override;
  void prepare_team_step(std::span<MixerState* const> states) const override;
  void step_team(const float* x, float* y, std::span<MixerState* const> states,
                 const Team& team) const override;

  int d() const { return d_; }

  std::unique_ptr<S4DKernel> kernel_;
  Param D;
  Linear output_linear;

 private:
  int d_;
  int B_ = 0, L_ = 0;
  // One element's recurrent step (idx = b * d + c of the state's rows, x those rows), shared by
  // step_many and step_team so that both compute the same numbers.
  [[gnu::noinline]] float step_at(S4DState& st, const float* x, int64_t idx) const;
  // The forward pass shared by training and prefill on the kernel K (d, L) the caller computed;
  // uT (the input, channel-major), zT (pre-GELU), tmp and g (GELU out, (B, L, d)) are where
  // the activations go: the layer's buffers or a workspace's. state_out (B, d, L): what the
  // state before x adds to the SSM's outputs (null: a zero state).
  void forward_body(const float* x, float* y, int B, int L, const float* K, Buffer& uT,
                    Buffer& zT, Buffer& tmp, Buffer& g, const float* state_out = nullptr) const;
  // The prefill's kernel for at least L positions from the current parameters: the layer's
  // shared copy when it was made from the same parameter values (bitwise) and is long enough,
  // else a new one that replaces it (as H3::prefill_kernels), so a prompt costs no kernel
  // generation; the copy is at most one chunk long.
  std::shared_ptr<const S4DState::PrefillCache> prefill_kernels(int L) const;
  mutable std::mutex prefill_kernels_mutex_;
  mutable std::shared_ptr<const S4DState::PrefillCache> prefill_kernels_;
  Buffer uT_, zT_, g_, K_;           // saved: input (B,d,L), pre-GELU (B,d,L), GELU out (B,L,d)
  Buffer tmp_, dT_, du_, dK_;        // temporaries
};

}  // namespace hippo
