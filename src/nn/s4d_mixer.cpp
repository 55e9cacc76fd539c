#include "nn/s4d_mixer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/parallel_work.h"
#include "kernels/fft_conv.h"
#include "kernels/gelu.h"
#include "kernels/flashconv/flashconv.h"
#include "kernels/skip.h"
#include "ssm/layout.h"
#include "nn/param_snapshot.h"

namespace hippo {

namespace {

size_t sz(int64_t a) { return static_cast<size_t>(a); }

S4DState& as_s4d_state(MixerState& state) {
  auto* st = dynamic_cast<S4DState*>(&state);
  HIPPO_CHECK(st != nullptr, "S4DMixer: state was not made by S4DMixer::new_state");
  return *st;
}

}  // namespace

S4DMixer::S4DMixer(int d, int d_state, Discretization disc)
    : kernel_(std::make_unique<S4DKernel>(d, d_state, disc)), output_linear(d, d), d_(d) {
  D = make_param({d}, ParamKind::NoDecay);
}

void S4DMixer::collect_params(const std::string& prefix, ParamList& out) {
  kernel_->collect_params(prefix + "kernel.kernel.", out);
  out.push_back({prefix + "D", &D});
  output_linear.collect_params(prefix + "output_linear.", out);
}

void S4DMixer::init(Rng& rng, int n_layer, float std) {
  HIPPO_CHECK(n_layer >= 1, "S4DMixer::init: n_layer=", n_layer, " must be >= 1");
  kernel_->init(rng, ssm_init);
  for (int c = 0; c < d_; ++c) D.value[c] = static_cast<float>(rng.normal());
  output_linear.init(rng, std / std::sqrt(2.0f * n_layer));
}

void S4DMixer::forward(const float* x, float* y, int B, int L) {
  HIPPO_CHECK(B >= 0 && L >= 0, "S4DMixer::forward: negative shape B=", B, " L=", L);
  B_ = B;
  L_ = L;
  if (static_cast<int64_t>(B) * L == 0) return;
  float* K = K_.get(sz(static_cast<int64_t>(d_) * L));
  kernel_->kernel(K, L);  // also discretises, for backward
  forward_body(x, y, B, L, K, uT_, zT_, tmp_, g_);
}

void S4DMixer::forward_body(const float* x, float* y, int B, int L, const float* K, Buffer& uTb,
                            Buffer& zTb, Buffer& tmpb, Buffer& gb, const float* state_out) const {
  const int d = d_;
  const int64_t n = static_cast<int64_t>(B) * L * d;
  float* uT = uTb.get(sz(n));
  float* zT = zTb.get(sz(n));
  to_channel_major(x, uT, B, L, d);
  const float* Dv = D.value.data();
  if (reference_conv) {
    fft_causal_conv(uT, K, zT, B, d, L);
    skip_forward(uT, Dv, zT, B, d, L);
  } else {
    flashconv_fwd(uT, K, Dv, zT, B, d, L);
  }
  if (state_out) {
#pragma omp parallel for schedule(static) if (worth_parallel(n))
    for (int64_t i = 0; i < n; ++i) zT[i] += state_out[i];
  }
  float* tmp = tmpb.get(sz(n));
  gelu_forward(zT, tmp, n);
  float* g = gb.get(sz(n));
  to_channels_last(tmp, g, B, L, d);
  output_linear.forward(g, y, static_cast<int64_t>(B) * L);
}

void S4DMixer::backward(const float* dy, float* dx) {
  const int B = B_, L = L_, d = d_;
  const int64_t n = static_cast<int64_t>(B) * L * d;
  if (n == 0) return;
  float* tmp = tmp_.get(sz(n));
  output_linear.backward(g_.data(), dy, tmp, static_cast<int64_t>(B) * L);
  float* dz = dT_.get(sz(n));
  to_channel_major(tmp, dz, B, L, d);
  const float* zT = zT_.data();
  const float* uT = uT_.data();
  gelu_backward(zT, dz, dz, n);
  float* du = du_.get(sz(n));
  float* dK = dK_.get(sz(static_cast<int64_t>(d) * L));
  for (int64_t i = 0; i < static_cast<int64_t>(d) * L; ++i) dK[i] = 0.0f;
  const float* Dv = D.value.data();
  float* gD = D.grad.data();
  if (reference_conv) {
    fft_causal_conv_backward(uT, K_.data(), dz, du, dK, B, d, L);
    skip_backward(uT, Dv, dz, du, gD, B, d, L);
  } else {
    flashconv_bwd(uT, K_.data(), Dv, dz, du, dK, gD, B, d, L);
  }
  kernel_->kernel_backward(dK, L);
  to_channels_last(du, dx, B, L, d);
}

std::unique_ptr<MixerState> S4DMixer::new_state(int B) const {
  HIPPO_CHECK(B >= 1, "S4DMixer::new_state: batch B=", B, " must be >= 1");
  auto st = std::make_unique<S4DState>();
  st->B = B;
  st->x.assign(sz(static_cast<int64_t>(B) * d_ * kernel_->M()), {0.0f, 0.0f});
  st->dynamics = kernel_->step_params();  // parameters may have changed since a forward
  return st;
}

std::shared_ptr<const S4DState::PrefillCache> S4DMixer::prefill_kernels(int L) const {
  const S4DKernel& k = *kernel_;
  const Param* ps[] = {&k.log_dt, &k.inv_A_real, &k.A_imag, &k.B, &k.C};
  std::unique_lock<std::mutex> lock(prefill_kernels_mutex_, std::defer_lock);
  if (share_prefill_kernels) {
    lock.lock();
    if (prefill_kernels_ && prefill_kernels_->len >= L && params_match(ps, prefill_kernels_->source))
      return prefill_kernels_;
  }
  auto pc = std::make_shared<S4DState::PrefillCache>();
  pc->len = L;
  pc->source = snapshot_params(ps);
  pc->dyn = k.discretized();
  pc->K.resize(sz(static_cast<int64_t>(d_) * L));
  k.kernel(pc->dyn, pc->K.data(), L);
  if (share_prefill_kernels) prefill_kernels_ = pc;
  return pc;
}

void S4DMixer::prefill(const float* x, float* y, int B, int L, MixerState& state,
                       Workspace& ws) const {
  S4DState& st = as_s4d_state(state);
  HIPPO_CHECK(st.B == B, "S4DMixer::prefill: state batch ", st.B, " does not match input batch ",
              B);
  HIPPO_CHECK(L >= 0, "S4DMixer::prefill: negative length L=", L);
  st.dynamics = kernel_->step_params();
  if (L == 0) return;
  const int d = d_, M = kernel_->M();
  // The kernel (and one snapshot of the dynamics for it and the state) once for all chunks of
  // a prefill: a later chunk that is no longer uses a prefix of it.
  auto& pc = st.prefill_cache;
  if (!pc || pc->len < L) pc = prefill_kernels(L);
  const float* K = pc->K.data();
  if (pc->len != L) {  // rows of the cached kernel are pc->len apart
    float* k = ws.slot(4).get(sz(static_cast<int64_t>(d) * L));
    for (int c = 0; c < d; ++c)
      std::memcpy(k + static_cast<int64_t>(c) * L, K + static_cast<int64_t>(c) * pc->len,
                  sizeof(float) * L);
    K = k;
  }
  const float* state_out = nullptr;  // nothing from a zero state
  if (std::any_of(st.x.begin(), st.x.end(), [](const std::complex<float>& v) { return v != std::complex<float>{}; })) {
    float* out = ws.slot(5).get(sz(static_cast<int64_t>(B) * d * L));
    for (int b = 0; b < B; ++b)
      kernel_->state_output(pc->dyn, st.x.data() + static_cast<int64_t>(b) * d * M,
                            out + static_cast<int64_t>(b) * d * L, L);
    state_out = out;
  }
  forward_body(x, y, B, L, K, ws.slot(0), ws.slot(1), ws.slot(2), ws.slot(3), state_out);
  const float* uT = ws.slot(0).data();
  const S4DKernel::Discrete& dyn = pc->dyn;
#pragma omp parallel for collapse(2) schedule(static) if (worth_parallel(int64_t{B} * d * L * M))
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < d; ++c) {
      const int64_t idx = static_cast<int64_t>(b) * d + c;
      kernel_->advance_state(dyn, c, uT + idx * L, L, st.x.data() + idx * M);
    }
}

float S4DMixer::step_at(S4DState& st, const float* x, int64_t idx) const {
  const int c = static_cast<int>(idx % d_);
  const float u = x[idx];
  return st.dynamics->step(c, st.x.data() + idx * kernel_->M(), u) + D.value.data()[c] * u;
}

void S4DMixer::step_many(const float* x, float* y, std::span<MixerState* const> states) const {
  HIPPO_CHECK(!states.empty(), "S4DMixer::step_many: no states");
  const int d = d_, M = kernel_->M();
  int64_t total = 0;  // all states' sequences
  for (MixerState* s : states) total += as_s4d_state(*s).B;
  float* g = as_s4d_state(*states[0]).g.get(sz(total * d));
  int64_t off = 0;
  for (MixerState* s : states) {
    S4DState& st = as_s4d_state(*s);
    if (!st.dynamics) st.dynamics = kernel_->step_params();
    const int64_t rows = static_cast<int64_t>(st.B) * d;
    const float* xs = x + off;
    float* gs = g + off;
    parallel_range(rows, worth_parallel_step(rows * M), [&](int64_t r0, int64_t r1) {
      for (int64_t idx = r0; idx < r1; ++idx) gs[idx] = step_at(st, xs, idx);
    });
    off += rows;
  }
  gelu_forward(g, g, total * d);  // elementwise: in place is fine
  output_linear.forward(g, y, total);
}

void S4DMixer::prepare_team_step(std::span<MixerState* const> states) const {
  HIPPO_CHECK(!states.empty(), "S4DMixer::step_team: no states");
  int64_t total = 0;
  for (MixerState* s : states) {
    S4DState& st = as_s4d_state(*s);
    if (!st.dynamics) st.dynamics = kernel_->step_params();
    total += st.B;
  }
  as_s4d_state(*states[0]).g.get(sz(total * d_));
}

// Channels split over the team; the output projection reads all of them after a barrier.
void S4DMixer::step_team(const float* x, float* y, std::span<MixerState* const> states,
                         const Team& team) const {
  const int64_t d = d_;
  int64_t total = 0;
  for (MixerState* s : states) total += static_cast<S4DState&>(*s).B;
  float* g = static_cast<S4DState&>(*states[0]).g.data();
  const auto [c0, c1] = team.share(d);
  int64_t off = 0;
  for (MixerState* s : states) {
    S4DState& st = static_cast<S4DState&>(*s);
    for (int64_t b = 0; b < st.B; ++b) {
      float* gs = g + off + b * d;
      for (int64_t c = c0; c < c1; ++c) gs[c] = step_at(st, x + off, b * d + c);
      gelu_forward(gs + c0, gs + c0, c1 - c0);
    }
    off += static_cast<int64_t>(st.B) * d;
  }
  team.barrier();
  const auto [o0, o1] = team.share(d);
  output_linear.forward_part(g, y, total, o0, o1);
}

void S4DMixer::release_activations() {
  release_buffers(uT_, zT_, g_, K_, tmp_, dT_, du_, dK_);
}

}  // namespace hippo
