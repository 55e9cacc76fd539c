// The H3 layer (spec §3): q ⊙ DiagSSM(ShiftSSM(k) ⊙ v) between four d×d linears, with
// multi-head (head_dim p > 1, output channel h*p + j as the authors' fused kernel) and the two
// ablations of the paper (use_shift = false: q ⊙ DiagSSM(k ⊙ v); use_diag = false:
// q ⊙ (ShiftSSM(k) ⊙ v)). Parameters exist only for the parts that exist.
//
// Convolution mode: the shift SSM by direct convolution (N taps), the diagonal SSM by FFT.
// Recurrent mode: one O(d*N) step per token from a fixed-size state.
#pragma once
#include <complex>
#include <memory>
#include <mutex>
#include <vector>

#include "core/buffer.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "ssm/s4d.h"
#include "ssm/shift.h"

namespace hippo {

struct H3State : MixerState {
  int B = 0;
  // The shift SSM's state, in one of two forms (ssm/shift.h "ring form"):
  //  - shift (B, d, N): s per channel, stepped by shift-and-update; current while
  //    shift_current (always after a prefill or a load);
  //  - shift_ring (B, N, d): the last N inputs, newest at slot shift_pos; it alone is the state
  //    once shift_age (inputs pushed since the state was last given as s, at most N) reaches
  //    N: a fresh state (zero), N steps after a load, or any prefill from such a state.
  // A step takes the ring form when the ring is the state (then shift goes stale), else the
  // shift-and-update form; both push the input into the ring.
  std::vector<float> shift;
  std::vector<float> shift_ring;
  int shift_n = 0;  // N (0 without the shift SSM)
  int shift_pos = 0, shift_age = 0;
  bool shift_current = true;
  // The shift SSM's step parameters (B, C and the kernel) this state steps with: set like
  // diag_dynamics below.
  std::shared_ptr<const ShiftStepParams> shift_dynamics;
  std::vector<std::complex<float>> diag;   // (B, p, p, H, M): diag SSM state per (i, j, head)
  // The diagonal SSM's discretised dynamics this state steps with (read-only, shared): set by
  // new_state and prefill, or by the first step of a state that was copied without them.
  std::shared_ptr<const S4DStepParams> diag_dynamics;
  Buffer q, k, v, y;  // step's scratch: in the state, so that threads share nothing writable

  // What the chunks of one prefill share: the kernels for `len` positions and the diagonal
  // SSM's dynamics they were made from (see MixerState::release_prefill_cache).
  // Made by H3::prefill_kernels and shared by every state's prefill while the parameters they
  // were made from (`source`, bitwise) stay the same.
  struct PrefillCache {
    int len = 0;
    S4DKernel::Discrete dyn;
    std::vector<float> Ks, Kd;  // (d, N), (H, len)
    std::vector<float> source;  // the shift and diagonal SSMs' parameter values
  };
  std::shared_ptr<const PrefillCache> prefill_cache;
  void release_prefill_cache() override { prefill_cache.reset(); }
  bool ring_ready() const { return shift_n > 0 && shift_age >= shift_n; }
  // The ring form reads the ring and writes one input per channel; shift-and-update reads and
  // writes s and writes the input into the ring. The diagonal SSM's state is read and written.
  int64_t step_bytes() const override {
    const auto s = static_cast<int64_t>(shift.size() * sizeof(float));
    const int64_t inputs = shift_n > 0 ? s / shift_n : 0;
    return (ring_ready() ? s : 2 * s) + inputs +
           static_cast<int64_t>(2 * diag.size() * sizeof(diag[0]));
  }
};

class H3 : public Mixer {
 public:
  // Initialisation of the diagonal SSM's A used by init() (spec §1: S4D-Lin or S4D-Inv).
  S4DInit ssm_init = S4DInit::Lin;
  // Diagonal SSM convolution through the plain FFTW path instead of FlashConv (tests hold
  // the two equal).
  bool reference_conv = false;
  // Prefill keeps its kernels in the layer for the next prefill (see prefill_kernels).
  bool share_prefill_kernels = true;
  // Prefill's projections write/read the channel-major layout directly (no transpose pass;
  // Acts::direct_layout). false: the transposes, the reference path tests hold it equal to.
  bool direct_layout = true;

  H3(int d, int d_state = 64, int head_dim = 1, bool use_shift = true, bool use_diag = true,
     Discretization disc = Discretization::Bilinear);

  // Official names (spec §5), after `prefix`: q_proj.*, k_proj.*, v_proj.*, output_linear.*,
  // ssm_k_kernel.kernel.{B,C}, ssm_k_D, kernel.kernel.{log_dt,inv_A_real,A_imag,B,C}, D.
  void collect_params(const std::string& prefix, ParamList& out) override;
  void forward(const float* x, float* y, int B, int L) override;
  void backward(const float* dy, float* dx) override;
  void init(Rng& rng, int n_layer, float std = 0.02f) override;

  // The state steps with the dynamics of the parameter values at new_state (or prefill).
  std::unique_ptr<MixerState> new_state(int B) const override;
  // The forward pass on x in `ws` continuing from the states (state passing: the shift SSM's
  // last inputs and the diagonal SSM's state add their part to the outputs), then the states
  // after it.
  using Mixer::prefill;
  void prefill(const float* x, float* y, int B, int L, MixerState& state,
               Workspace& ws) const override;
  void step_many(const float* x, float* y, std::span<MixerState* const> states) const override;
  void prepare_team_step(std::span<MixerState* const> states) const override;
  void step_team(const float* x, float* y, std::span<MixerState* const> states,
                 const Team& team) const override;

  int d() const { return d_; }
  int d_state() const { return N_; }
  int head_dim() const { return p_; }
  int heads() const { return H_; }
  bool use_shift() const { return shift_ != nullptr; }
  bool use_diag() const { return diag_ != nullptr; }

  // The shift SSM's state of `st` as s (B, d, N) whichever form it is kept in, its ring in the
  // order of the saved-state file (B, d, N), newest input first: [b][c][j] = u_{t-j}, and the
  // ring and its age set from that order (a loaded state). For saving and loading states.
  void shift_state_of(const H3State& st, float* s) const;
  void shift_ring_of(const H3State& st, float* ring) const;
  void set_shift_ring(H3State& st, const float* ring, int age) const;

  Linear q_proj, k_proj, v_proj, output_linear;
  std::unique_ptr<ShiftKernel> shift_;  // null without the shift SSM
  std::unique_ptr<S4DKernel> diag_;     // null without the diagonal SSM
  Param ssm_k_D, D;                     // present with shift_ / diag_ respectively

 private:
  int d_, N_, p_, H_;
  int B_ = 0, L_ = 0;  // shape of the last forward
  bool kv_ready_ = false;  // kv_ holds k' ⊙ v of the last forward
  // head_dim 1 with the diagonal SSM and FlashConv: forward/backward run the fused H3 op.
  bool fused_h3() const;
  const float* saved_kv();

  // Where a forward pass puts its activations: the layer's own buffers (training, kept for
  // backward) or a workspace's (prefill). Channel-major (B, d, L) unless noted.
  // direct_layout (prefill): the projections write and read the channel-major layout
  // straight (Linear::forward_to/from_channel_major) instead of through transposes, from
  // kDirectLayoutMin positions (shorter: the transposes are cheap and the small-rows GEMM
  // kernel is faster); ypre then holds no activations. Training keeps ypre for backward.
  struct Acts {
    Buffer &tmp, &qT, &kT, &vT, &ks, &kv, &zD, &yT, &ypre;
    bool direct_layout;
  };
  static constexpr int kDirectLayoutMin = 32;
  Acts own_acts();
  static Acts workspace_acts(Workspace& ws, bool direct_layout);
  // y (B, L, d) = output_linear of yT (B, d, L), through a.ypre or directly (a.direct_layout).
  void output_from(const float* yT, float* y, int B, int L, Acts& a) const;
  // The forward pass shared by training and prefill, on kernels the caller computed:
  // Ks (d, N) of the shift SSM, Kd (H, L) of the diagonal SSM (null where absent). Forms
  // a.kv (k' ⊙ v) except on the fused path. Continuing from a state (prefill): shift_state
  // (B, d, N) is the shift SSM's state before x, diag_out (B, p, p, H, L) what the diagonal
  // SSM's state before x adds to its outputs (either null: a zero state).
  void forward_body(const float* x, float* y, int B, int L, const float* Ks, const float* Kd,
                    Acts& a, const float* shift_state = nullptr,
                    const float* diag_out = nullptr) const;
  // kv[b,i,j,h] = k'[b,h*p+i] * v[b,h*p+j] (channel-major k' and v).
  void form_kv(const float* ks, const float* vT, float* kv, int B, int L) const;
  // The recurrent part of one step of one state on its rows of the projections: k is
  // overwritten with k', yp gets the pre-output-projection rows.
  void step_state(H3State& st, const float* q, float* k, const float* v, float* yp) const;
  // The prefill's kernels for at least L positions from the current parameters: the layer's
  // shared copy when it was made from the same parameter values (bitwise) and is long enough,
  // else a new one that replaces it. A short prompt then costs no kernel generation (it was
  // ~10% of a 512-token prefill of the 125M shape); the copy is at most one chunk long
  // (H x chunk floats, 12.6 MB at d 768 and chunk 4096). share_prefill_kernels = false: a
  // fresh one on every call (the reference path, tests).
  std::shared_ptr<const H3State::PrefillCache> prefill_kernels(int L) const;
  std::vector<const Param*> kernel_params() const;
  mutable std::mutex prefill_kernels_mutex_;
  mutable std::shared_ptr<const H3State::PrefillCache> prefill_kernels_;
  // The two parts of a step both paths (step_many, step_team) run, so that they compute the
  // same numbers: k[i] <- k'[i] (shift SSM and skip) for the elements i = b * d + c in
  // [i0, i1) of the state's rows; yp of heads [h0, h1) of sequence b (their p * p diagonal
  // SSMs, or their bypass, times q). Both step runs of channels in one call each
  // (shift_step_channels, S4DStepParams::step_channels where p = 1).
  void shift_rows(H3State& st, float* k, int64_t i0, int64_t i1) const;
  // After every row's shift_rows of a step: the ring's newest slot and age move on.
  void finish_shift_step(H3State& st) const;
  // st.shift made current from the ring (a prefill continues from s).
  void make_shift_current(H3State& st) const;
  // The prefill's inputs kT (B, d, L) of the shift SSM into the ring.
  void push_shift_inputs(H3State& st, const float* kT, int L) const;
  const ShiftStepParams& shift_dynamics(H3State& st) const;
  void heads(H3State& st, const float* q, const float* k, const float* v, float* yp, int b,
             int h0, int h1) const;

 public:
  void release_activations() override;

 private:
  void backward_shift_and_k(float* dks, float* tmp, float* dx);
  // Saved by forward (channel-major (B, d, L) unless noted).
  Buffer x_, qT_, kT_, ks_, vT_, kv_, zD_, ypre_, Ks_, Kd_;
  // Temporaries.
  Buffer tmp_, yT_, dyT_, dzD_, dkv_, dks_, dk_, dKs_, dKd_;
};

}  // namespace hippo
