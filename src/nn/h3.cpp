#include "nn/h3.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "core/phase_profile.h"
#include "kernels/causal_conv_direct.h"
#include "kernels/fft_conv.h"
#include "kernels/flashconv/flashconv.h"
#include "kernels/parallel_copy.h"
#include "kernels/skip.h"
#include "kernels/parallel_work.h"
#include "ssm/layout.h"
#include "nn/param_snapshot.h"

namespace hippo {

namespace {
size_t sz(int64_t a) { return static_cast<size_t>(a); }
}  // namespace

H3::H3(int d, int d_state, int head_dim, bool use_shift, bool use_diag, Discretization disc)
    : q_proj(d, d), k_proj(d, d), v_proj(d, d), output_linear(d, d), d_(d), N_(d_state),
      p_(head_dim), H_(head_dim > 0 ? d / head_dim : 0) {
  HIPPO_CHECK(d >= 1, "H3: d=", d, " must be >= 1");
  HIPPO_CHECK(head_dim >= 1 && d % head_dim == 0, "H3: head_dim=", head_dim,
              " must be >= 1 and divide d=", d);
  HIPPO_CHECK(d_state >= 1, "H3: d_state=", d_state, " must be >= 1");
  HIPPO_CHECK(!use_diag || d_state % 2 == 0, "H3: d_state=", d_state,
              " must be even (the diagonal SSM has d_state/2 complex modes)");
  if (use_shift) {
    shift_ = std::make_unique<ShiftKernel>(d, d_state);
    ssm_k_D = make_param({d}, ParamKind::NoDecay);
  }
  if (use_diag) {
    diag_ = std::make_unique<S4DKernel>(H_, d_state, disc);
    D = make_param({H_}, ParamKind::NoDecay);
  }
}

void H3::collect_params(const std::string& prefix, ParamList& out) {
  q_proj.collect_params(prefix + "q_proj.", out);
  k_proj.collect_params(prefix + "k_proj.", out);
  v_proj.collect_params(prefix + "v_proj.", out);
  output_linear.collect_params(prefix + "output_linear.", out);
  if (shift_) {
    shift_->collect_params(prefix + "ssm_k_kernel.kernel.", out);
    out.push_back({prefix + "ssm_k_D", &ssm_k_D});
  }
  if (diag_) {
    diag_->collect_params(prefix + "kernel.kernel.", out);
    out.push_back({prefix + "D", &D});
  }
}

void H3::init(Rng& rng, int n_layer, float std) {
  HIPPO_CHECK(n_layer >= 1, "H3::init: n_layer=", n_layer, " must be >= 1");
  q_proj.init(rng, std);
  k_proj.init(rng, std);
  v_proj.init(rng, std);
  output_linear.init(rng, std / std::sqrt(2.0f * n_layer));
  if (shift_) {
    shift_->init(rng);
    for (int c = 0; c < d_; ++c) ssm_k_D.value[c] = static_cast<float>(rng.normal());
  }
  if (diag_) {
    diag_->init(rng, ssm_init);
    for (int h = 0; h < H_; ++h) D.value[h] = static_cast<float>(rng.normal());
  }
}

bool H3::fused_h3() const { return diag_ && p_ == 1 && !reference_conv; }

void H3::form_kv(const float* ks, const float* vT, float* kv, int B, int L) const {
  const int d = d_, p = p_, H = H_;
  const int64_t nkv = static_cast<int64_t>(B) * L * d * p;
#pragma omp parallel for collapse(2) schedule(static) if (worth_parallel(nkv))
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < p; ++i)
        for (int j = 0; j < p; ++j) {
          const float* kr = ks + (static_cast<int64_t>(b) * d + h * p + i) * L;
          const float* vr = vT + (static_cast<int64_t>(b) * d + h * p + j) * L;
          float* o = kv + ((static_cast<int64_t>(b * p + i) * p + j) * H + h) * L;
          for (int l = 0; l < L; ++l) o[l] = kr[l] * vr[l];
        }
}

// k' ⊙ v of the last forward. The fused forward never forms it, so it is made on demand.
const float* H3::saved_kv() {
  if (kv_ready_) return kv_.data();
  const int64_t nkv = static_cast<int64_t>(B_) * L_ * d_ * p_;
  form_kv(shift_ ? ks_.data() : kT_.data(), vT_.data(), kv_.get(sz(nkv)), B_, L_);
  kv_ready_ = true;
  return kv_.data();
}

H3::Acts H3::own_acts() { return Acts{tmp_, qT_, kT_, vT_, ks_, kv_, zD_, yT_, ypre_, false}; }

H3::Acts H3::workspace_acts(Workspace& ws, bool direct_layout) {
  return Acts{ws.slot(0), ws.slot(1), ws.slot(2), ws.slot(3), ws.slot(4),
              ws.slot(5), ws.slot(6), ws.slot(7), ws.slot(8), direct_layout};
}

void H3::forward(const float* x, float* y, int B, int L) {
  HIPPO_CHECK(B >= 0 && L >= 0, "H3::forward: negative shape B=", B, " L=", L);
  B_ = B;
  L_ = L;
  kv_ready_ = false;  // k' and v change below
  const int64_t n = static_cast<int64_t>(B) * L * d_;  // elements of one (B, L, d) tensor
  if (n == 0) return;
  float* xs = x_.get(sz(n));
  {
    prof::Scope ps("h3.copy");
    parallel_copy(xs, x, n);
  }
  float* Ks = nullptr;
  float* Kd = nullptr;
  if (shift_) {
    Ks = Ks_.get(sz(static_cast<int64_t>(d_) * N_));
    {
      prof::Scope ps("h3.ssm_kernel");
      shift_->kernel(Ks);
    }
  }
  if (diag_) {
    Kd = Kd_.get(sz(static_cast<int64_t>(H_) * L));
    {
      prof::Scope ps("h3.ssm_kernel");
      diag_->kernel(Kd, L);  // also discretises, for backward
    }
  }
  Acts a = own_acts();
  forward_body(xs, y, B, L, Ks, Kd, a);
  kv_ready_ = !fused_h3();
}

void H3::forward_body(const float* x, float* y, int B, int L, const float* Ks, const float* Kd,
                      Acts& a, const float* shift_state, const float* diag_out) const {
  const int d = d_, p = p_, H = H_, N = N_;
  const int64_t n = static_cast<int64_t>(B) * L * d;  // elements of one (B, L, d) tensor
  const int64_t nkv = n * p;                           // (B, p, p, H, L)
  // Not zeroed: every buffer of the forward below is written in full before it is read
  // (prefill allocates them per call; H3Prefill.UninitScratch* poisons them to check).
  float* qT = a.qT.get_uninit(sz(n));
  float* kT = a.kT.get_uninit(sz(n));
  float* vT = a.vT.get_uninit(sz(n));
  if (a.direct_layout && L >= kDirectLayoutMin) {  // tmp is used by bf16/q8 weights only
    q_proj.forward_to_channel_major(x, qT, B, L, a.tmp);
    k_proj.forward_to_channel_major(x, kT, B, L, a.tmp);
    v_proj.forward_to_channel_major(x, vT, B, L, a.tmp);
  } else {
    float* tmp = a.tmp.get_uninit(sz(n));
    q_proj.forward(x, tmp, static_cast<int64_t>(B) * L);
    to_channel_major(tmp, qT, B, L, d);
    k_proj.forward(x, tmp, static_cast<int64_t>(B) * L);
    to_channel_major(tmp, kT, B, L, d);
    v_proj.forward(x, tmp, static_cast<int64_t>(B) * L);
    to_channel_major(tmp, vT, B, L, d);
  }

  // k' = ShiftSSM(k) + ssm_k_D k.
  const float* ks = kT;
  if (shift_) {
    float* out = a.ks.get_uninit(sz(n));
    causal_conv_direct(kT, Ks, out, B, d, L, N);
    skip_forward(kT, ssm_k_D.value.data(), out, B, d, L);
    if (shift_state) {  // the inputs before x still in the filter's window
#pragma omp parallel for collapse(2) schedule(static) if (worth_parallel(int64_t{B} * d * N * N))
      for (int b = 0; b < B; ++b)
        for (int c = 0; c < d; ++c) {
          const int64_t row = static_cast<int64_t>(b) * d + c;
          shift_->add_state_output(c, shift_state + row * N, L, out + row * L);
        }
    }
    ks = out;
  }

  // head_dim 1 with the diagonal SSM: one fused FlashConv pass per channel computes
  // y = q ⊙ (Kd * (k' ⊙ v) + D k' ⊙ v) without writing k' ⊙ v or the convolution out.
  if (fused_h3()) {
    float* yT = a.yT.get_uninit(sz(n));
    flashconv_h3_fwd(qT, ks, vT, Kd, D.value.data(), yT, B, H, L);
    if (diag_out) {  // + q ⊙ (what the state before x adds); p = 1, so d = H
#pragma omp parallel for schedule(static) if (worth_parallel(n))
      for (int64_t i = 0; i < n; ++i) yT[i] += qT[i] * diag_out[i];
    }
    output_from(yT, y, B, L, a);
    return;
  }

  float* kv = a.kv.get_uninit(sz(nkv));
  form_kv(ks, vT, kv, B, L);
  // zD = DiagSSM(kv) + D kv, one kernel per head shared by its p*p sequences.
  const float* zD = kv;
  if (diag_) {
    float* out = a.zD.get_uninit(sz(nkv));
    const float* Dh = D.value.data();
    if (reference_conv) {
      fft_causal_conv(kv, Kd, out, B * p * p, H, L);
      skip_forward(kv, Dh, out, B * p * p, H, L);
    } else {
      flashconv_fwd(kv, Kd, Dh, out, B * p * p, H, L);
    }
    if (diag_out) {
#pragma omp parallel for schedule(static) if (worth_parallel(nkv))
      for (int64_t i = 0; i < nkv; ++i) out[i] += diag_out[i];
    }
    zD = out;
  }

  // y[b,h*p+j] = sum_i q[b,h*p+i] * zD[b,i,j,h].
  float* yT = a.yT.get_uninit(sz(n));
#pragma omp parallel for collapse(2) schedule(static) if (worth_parallel(nkv))
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int j = 0; j < p; ++j) {
        float* o = yT + (static_cast<int64_t>(b) * d + h * p + j) * L;
        for (int l = 0; l < L; ++l) o[l] = 0.0f;
        for (int i = 0; i < p; ++i) {
          const float* qr = qT + (static_cast<int64_t>(b) * d + h * p + i) * L;
          const float* zr = zD + ((static_cast<int64_t>(b * p + i) * p + j) * H + h) * L;
          for (int l = 0; l < L; ++l) o[l] += qr[l] * zr[l];
        }
      }
  output_from(yT, y, B, L, a);
}

void H3::output_from(const float* yT, float* y, int B, int L, Acts& a) const {
  if (a.direct_layout && L >= kDirectLayoutMin) {
    output_linear.forward_from_channel_major(yT, y, B, L, a.ypre);
    return;
  }
  float* ypre = a.ypre.get_uninit(sz(static_cast<int64_t>(B) * L * d_));
  to_channels_last(yT, ypre, B, L, d_);
  output_linear.forward(ypre, y, static_cast<int64_t>(B) * L);
}

void H3::backward(const float* dy, float* dx) {
  const int B = B_, L = L_, d = d_, p = p_, H = H_;
  const int64_t n = static_cast<int64_t>(B) * L * d;
  const int64_t nkv = n * p;
  const int64_t rows = static_cast<int64_t>(B) * L;
  if (n == 0) return;
  const float* xs = x_.data();
  const float* qT = qT_.data();
  const float* kT = kT_.data();
  const float* vT = vT_.data();
  const float* ks = shift_ ? ks_.data() : kT;
  float* tmp = tmp_.get(sz(n));
  {
    prof::Scope ps("h3.proj");
    output_linear.backward(ypre_.data(), dy, tmp, rows);
  }
  float* dyT = dyT_.get(sz(n));
  {
    prof::Scope ps("h3.transpose");
    to_channel_major(tmp, dyT, B, L, d);
  }

  // The fused path's backward: dq, dk', dv, dKd and dD in one FlashConv pass per channel.
  if (fused_h3()) {
    float* dKd = dKd_.get(sz(static_cast<int64_t>(H) * L));
    std::memset(dKd, 0, sizeof(float) * H * L);
    float* dq = dk_.get(sz(n));
    float* dks = dks_.get(sz(n));
    float* dv = dkv_.get(sz(n));
    {
      prof::Scope ps("h3.flashconv");
      flashconv_h3_bwd(qT, ks, vT, Kd_.data(), D.value.data(), dyT, dq, dks, dv, dKd,
                       D.grad.data(), B, H, L);
    }
    {
      prof::Scope ps("h3.ssm_kernel");
      diag_->kernel_backward(dKd, L);
    }
    {
      prof::Scope ps("h3.transpose");
      to_channels_last(dq, tmp, B, L, d);
    }
    {
      prof::Scope ps("h3.proj");
      q_proj.backward(xs, tmp, dx, rows, false);
    }
    {
      prof::Scope ps("h3.transpose");
      to_channels_last(dv, tmp, B, L, d);
    }
    {
      prof::Scope ps("h3.proj");
      v_proj.backward(xs, tmp, dx, rows, true);
    }
    backward_shift_and_k(dks, tmp, dx);
    return;
  }

  const float* kv = saved_kv();
  const float* zD = diag_ ? zD_.data() : kv;

  // dq[h*p+i] = sum_j dy[h*p+j] zD[i,j,h];  dzD[i,j,h] = q[h*p+i] dy[h*p+j].
  float* dq = dk_.get(sz(n));
  float* dzD = dzD_.get(sz(nkv));
#pragma omp parallel for collapse(2) schedule(static) if (worth_parallel(nkv))
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < p; ++i) {
        const float* qr = qT + (static_cast<int64_t>(b) * d + h * p + i) * L;
        float* o = dq + (static_cast<int64_t>(b) * d + h * p + i) * L;
        for (int l = 0; l < L; ++l) o[l] = 0.0f;
        for (int j = 0; j < p; ++j) {
          const float* gr = dyT + (static_cast<int64_t>(b) * d + h * p + j) * L;
          const int64_t off = ((static_cast<int64_t>(b * p + i) * p + j) * H + h) * L;
          const float* zr = zD + off;
          float* dz = dzD + off;
          for (int l = 0; l < L; ++l) {
            o[l] += gr[l] * zr[l];
            dz[l] = qr[l] * gr[l];
          }
        }
      }
  {
    prof::Scope ps("h3.transpose");
    to_channels_last(dq, tmp, B, L, d);
  }
  {
    prof::Scope ps("h3.proj");
    q_proj.backward(xs, tmp, dx, rows, false);
  }

  // Through the diagonal SSM and its skip.
  const float* dkv = dzD;
  if (diag_) {
    float* dKd = dKd_.get(sz(static_cast<int64_t>(H) * L));
    std::memset(dKd, 0, sizeof(float) * H * L);
    float* out = dkv_.get(sz(nkv));
    const float* Dh = D.value.data();
    float* gD = D.grad.data();
    if (reference_conv) {
      fft_causal_conv_backward(kv, Kd_.data(), dzD, out, dKd, B * p * p, H, L);
      skip_backward(kv, Dh, dzD, out, gD, B * p * p, H, L);
    } else {
      flashconv_bwd(kv, Kd_.data(), Dh, dzD, out, dKd, gD, B * p * p, H, L);
    }
    {
      prof::Scope ps("h3.ssm_kernel");
      diag_->kernel_backward(dKd, L);
    }
    dkv = out;
  }

  // dk'[h*p+i] = sum_j dkv[i,j,h] v[h*p+j];  dv[h*p+j] = sum_i dkv[i,j,h] k'[h*p+i].
  float* dks = dks_.get(sz(n));
  float* dv = dyT;  // dyT is no longer needed
#pragma omp parallel for collapse(2) schedule(static) if (worth_parallel(nkv))
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      for (int c = h * p; c < (h + 1) * p; ++c) {
        float* a = dks + (static_cast<int64_t>(b) * d + c) * L;
        float* e = dv + (static_cast<int64_t>(b) * d + c) * L;
        for (int l = 0; l < L; ++l) a[l] = e[l] = 0.0f;
      }
      for (int i = 0; i < p; ++i)
        for (int j = 0; j < p; ++j) {
          const float* g = dkv + ((static_cast<int64_t>(b * p + i) * p + j) * H + h) * L;
          const float* kr = ks + (static_cast<int64_t>(b) * d + h * p + i) * L;
          const float* vr = vT + (static_cast<int64_t>(b) * d + h * p + j) * L;
          float* dkr = dks + (static_cast<int64_t>(b) * d + h * p + i) * L;
          float* dvr = dv + (static_cast<int64_t>(b) * d + h * p + j) * L;
          for (int l = 0; l < L; ++l) {
            dkr[l] += g[l] * vr[l];
            dvr[l] += g[l] * kr[l];
          }
        }
    }
  {
    prof::Scope ps("h3.transpose");
    to_channels_last(dv, tmp, B, L, d);
  }
  {
    prof::Scope ps("h3.proj");
    v_proj.backward(xs, tmp, dx, rows, true);
  }
  backward_shift_and_k(dks, tmp, dx);
}

// From dk' (channel-major) through the shift SSM and its skip, then k_proj (dx accumulated).
void H3::backward_shift_and_k(float* dks, float* tmp, float* dx) {
  const int B = B_, L = L_, d = d_, N = N_;
  const int64_t n = static_cast<int64_t>(B) * L * d;
  const int64_t rows = static_cast<int64_t>(B) * L;
  const float* xs = x_.data();
  const float* kT = kT_.data();
  const float* dk = dks;
  if (shift_) {
    float* dKs = dKs_.get(sz(static_cast<int64_t>(d) * N));
    std::memset(dKs, 0, sizeof(float) * d * N);
    float* out = dk_.get(sz(n));  // dq is consumed
    {
      prof::Scope ps("h3.shift_conv");
      causal_conv_direct_backward(kT, Ks_.data(), dks, out, dKs, B, d, L, N);
    }
    {
      prof::Scope ps("h3.shift_conv");
      skip_backward(kT, ssm_k_D.value.data(), dks, out, ssm_k_D.grad.data(), B, d, L);
    }
    {
      prof::Scope ps("h3.ssm_kernel");
      shift_->kernel_backward(dKs);
    }
    dk = out;
  }
  {
    prof::Scope ps("h3.transpose");
    to_channels_last(dk, tmp, B, L, d);
  }
  {
    prof::Scope ps("h3.proj");
    k_proj.backward(xs, tmp, dx, rows, true);
  }
}

std::unique_ptr<MixerState> H3::new_state(int B) const {
  HIPPO_CHECK(B >= 1, "H3::new_state: batch B=", B, " must be >= 1");
  auto st = std::make_unique<H3State>();
  st->B = B;
  if (shift_) {
    st->shift.assign(sz(static_cast<int64_t>(B) * d_ * N_), 0.0f);
    st->shift_ring.assign(st->shift.size(), 0.0f);
    st->shift_n = N_;
    st->shift_age = N_;  // zero inputs: the zero state, in the ring form from the first step
    st->shift_dynamics = shift_->step_params();
  }
  if (diag_) {
    st->diag.assign(sz(static_cast<int64_t>(B) * p_ * p_ * H_ * diag_->M()), {0.0f, 0.0f});
    st->diag_dynamics = diag_->step_params();  // parameters may have changed since a forward
  }
  return st;
}

namespace {
H3State& as_h3_state(MixerState& state, int B_expected, bool check_B) {
  auto* st = dynamic_cast<H3State*>(&state);
  HIPPO_CHECK(st != nullptr, "H3: state was not made by H3::new_state");
  HIPPO_CHECK(!check_B || st->B == B_expected, "H3: state batch ", st->B,
              " does not match input batch ", B_expected);
  return *st;
}
}  // namespace

namespace {
template <class T>
bool all_zero(const std::vector<T>& v) {
  return std::all_of(v.begin(), v.end(), [](const T& x) { return x == T{}; });
}
}  // namespace

std::vector<const Param*> H3::kernel_params() const {
  std::vector<const Param*> ps;
  ps.reserve(7);
  if (shift_) {
    ps.push_back(&shift_->B);
    ps.push_back(&shift_->C);
  }
  if (diag_)
    for (const Param* p : {&diag_->log_dt, &diag_->inv_A_real, &diag_->A_imag, &diag_->B, &diag_->C})
      ps.push_back(p);
  return ps;
}

std::shared_ptr<const H3State::PrefillCache> H3::prefill_kernels(int L) const {
  const std::vector<const Param*> ps = kernel_params();
  std::unique_lock<std::mutex> lock(prefill_kernels_mutex_, std::defer_lock);
  if (share_prefill_kernels) {
    lock.lock();
    if (prefill_kernels_ && prefill_kernels_->len >= L && params_match(ps, prefill_kernels_->source))
      return prefill_kernels_;
  }
  auto pc = std::make_shared<H3State::PrefillCache>();
  pc->len = L;
  pc->source = snapshot_params(ps);
  if (shift_) {
    pc->Ks.resize(sz(static_cast<int64_t>(d_) * N_));
    shift_->kernel(pc->Ks.data());
  }
  if (diag_) {
    pc->dyn = diag_->discretized();
    pc->Kd.resize(sz(static_cast<int64_t>(H_) * L));
    diag_->kernel(pc->dyn, pc->Kd.data(), L);
  }
  if (share_prefill_kernels) prefill_kernels_ = pc;
  return pc;
}

void H3::prefill(const float* x, float* y, int B, int L, MixerState& state,
                 Workspace& ws) const {
  H3State& st = as_h3_state(state, B, true);
  HIPPO_CHECK(L >= 0, "H3::prefill: negative length L=", L);
  if (L == 0) return;
  const int d = d_, p = p_, H = H_, N = N_;
  // The kernels (and one snapshot of the dynamics for them and the state) once for all chunks
  // of a prefill: a later chunk that is no longer uses a prefix of them.
  auto& pc = st.prefill_cache;
  if (!pc || pc->len < L) pc = prefill_kernels(L);
  const float* Ks = shift_ ? pc->Ks.data() : nullptr;
  const float* Kd = nullptr;
  if (diag_) {
    Kd = pc->Kd.data();
    if (pc->len != L) {  // rows of the cached kernel are pc->len apart
      float* k = ws.slot(10).get_uninit(sz(static_cast<int64_t>(H) * L));
      for (int h = 0; h < H; ++h)
        std::memcpy(k + static_cast<int64_t>(h) * L, Kd + static_cast<int64_t>(h) * pc->len,
                    sizeof(float) * L);
      Kd = k;
    }
  }
  if (shift_) make_shift_current(st);
  // What the states before x add to its outputs (nothing from a zero state).
  const float* shift_state = shift_ && !all_zero(st.shift) ? st.shift.data() : nullptr;
  const float* diag_out = nullptr;
  if (diag_ && !all_zero(st.diag)) {
    const int64_t group = static_cast<int64_t>(H) * diag_->M();
    float* out = ws.slot(9).get_uninit(sz(static_cast<int64_t>(B) * p * p * H * L));
    for (int g = 0; g < B * p * p; ++g)
      diag_->state_output(pc->dyn, st.diag.data() + g * group,
                          out + static_cast<int64_t>(g) * H * L, L);
    diag_out = out;
  }
  Acts a = workspace_acts(ws, direct_layout);
  forward_body(x, y, B, L, Ks, Kd, a, shift_state, diag_out);
  if (shift_) {
    const float* kT = a.kT.data();
#pragma omp parallel for collapse(2) schedule(static) if (worth_parallel(int64_t{B} * d * L * N))
    for (int b = 0; b < B; ++b)
      for (int c = 0; c < d; ++c)
        shift_->advance_state(c, kT + (static_cast<int64_t>(b) * d + c) * L, L,
                              st.shift.data() + (static_cast<int64_t>(b) * d + c) * N);
    push_shift_inputs(st, kT, L);
    st.shift_dynamics = shift_->step_params();
  }
  if (diag_) {
    st.diag_dynamics = diag_->step_params();
    const float* kv = a.kv.data();
    if (fused_h3()) {  // the fused forward does not form k' ⊙ v
      // Into q's buffer (p = 1, so the same size), which the forward no longer needs: a
      // buffer of its own was one more chunk-sized block (12.6 MB at d 768, chunk 4096) at
      // the prefill's peak.
      float* out = a.qT.data();
      form_kv(shift_ ? a.ks.data() : a.kT.data(), a.vT.data(), out, B, L);
      kv = out;
    }
    const int M = diag_->M();
    const S4DKernel::Discrete& dyn = pc->dyn;
    // Head by head: one table serves the head's B * p * p sequences.
#pragma omp parallel for schedule(static) if (worth_parallel(int64_t{B} * d * p * L * diag_->M()))
    for (int h = 0; h < H; ++h) {
      thread_local S4DKernel::AdvanceTable table;
      if (L >= S4DKernel::kAdvanceTableBlock) diag_->advance_table(dyn, h, table);
      for (int g = 0; g < B * p * p; ++g) {
        const int64_t idx = static_cast<int64_t>(g) * H + h;
        diag_->advance_state_blocked(dyn, table, h, kv + idx * L, L, st.diag.data() + idx * M);
      }
    }
  }
}

const ShiftStepParams& H3::shift_dynamics(H3State& st) const {
  if (!st.shift_dynamics) st.shift_dynamics = shift_->step_params();
  return *st.shift_dynamics;
}

void H3::shift_rows(H3State& st, float* k, int64_t i0, int64_t i1) const {
  const ShiftStepParams& dyn = *st.shift_dynamics;
  const float* D = ssm_k_D.value.data();
  const int N = N_, pos = (st.shift_pos + N - 1) % N;  // this step's slot
  const bool ring_form = st.ring_ready();
  for (int64_t i = i0; i < i1;) {  // runs within one sequence: channels c .. c + n - 1
    const int64_t b = i / d_, c = i % d_, n = std::min(i1 - i, d_ - c);
    float* ring = st.shift_ring.data() + b * N * d_;
    std::copy(k + i, k + i + n, ring + pos * d_ + c);
    if (ring_form)
      shift_ring_step(dyn.KT.data(), ring, pos, d_, N, D, k + b * d_, c, c + n);
    else
      shift_step_channels(dyn.B.data() + c * N, dyn.C.data() + c * N, st.shift.data() + i * N,
                          k + i, D + c, k + i, n, N);
    i += n;
  }
}

void H3::finish_shift_step(H3State& st) const {
  if (!shift_) return;
  if (st.ring_ready()) st.shift_current = false;
  st.shift_pos = (st.shift_pos + N_ - 1) % N_;
  st.shift_age = std::min(st.shift_age + 1, N_);
}

void H3::make_shift_current(H3State& st) const {
  if (st.shift_current) return;
  const ShiftStepParams& dyn = shift_dynamics(st);
  const int B = st.B, d = d_, N = N_;
#pragma omp parallel for collapse(2) schedule(static) if (worth_parallel(int64_t{B} * d * N * N))
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < d; ++c)
      ShiftKernel::ring_state(dyn.B.data(), st.shift_ring.data() + int64_t{b} * N * d, st.shift_pos,
                              d, N, c, st.shift.data() + (int64_t{b} * d + c) * N);
  st.shift_current = true;
}

void H3::push_shift_inputs(H3State& st, const float* kT, int L) const {
  const int N = N_, d = d_;
  const int pos = static_cast<int>(((st.shift_pos - int64_t{L}) % N + N) % N);  // newest input's slot
  const int first = std::max(0, L - N);  // older inputs fall out of the window
  for (int b = 0; b < st.B; ++b) {
    float* ring = st.shift_ring.data() + int64_t{b} * N * d;
    for (int c = 0; c < d; ++c) {
      const float* u = kT + (int64_t{b} * d + c) * L;
      for (int t = first; t < L; ++t) ring[int64_t{(pos + (L - 1 - t)) % N} * d + c] = u[t];
    }
  }
  st.shift_pos = pos;
  st.shift_age = static_cast<int>(std::min<int64_t>(int64_t{st.shift_age} + L, N));
}

void H3::shift_state_of(const H3State& st, float* s) const {
  if (st.shift_current) {
    std::copy(st.shift.begin(), st.shift.end(), s);
    return;
  }
  const auto dyn = st.shift_dynamics ? st.shift_dynamics : shift_->step_params();
  for (int b = 0; b < st.B; ++b)
    for (int c = 0; c < d_; ++c)
      ShiftKernel::ring_state(dyn->B.data(), st.shift_ring.data() + int64_t{b} * N_ * d_, st.shift_pos,
                              d_, N_, c, s + (int64_t{b} * d_ + c) * N_);
}

void H3::shift_ring_of(const H3State& st, float* ring) const {
  const int N = N_, d = d_;
  for (int b = 0; b < st.B; ++b)
    for (int c = 0; c < d; ++c)
      for (int j = 0; j < N; ++j)
        ring[(int64_t{b} * d + c) * N + j] =
            st.shift_ring[(int64_t{b} * N + (st.shift_pos + j) % N) * d + c];
}

void H3::set_shift_ring(H3State& st, const float* ring, int age) const {
  HIPPO_CHECK(age >= 0 && age <= N_, "H3: shift ring age ", age, " is outside [0, ", N_, "]");
  const int N = N_, d = d_;
  for (int b = 0; b < st.B; ++b)
    for (int c = 0; c < d; ++c)
      for (int j = 0; j < N; ++j)
        st.shift_ring[(int64_t{b} * N + j) * d + c] = ring[(int64_t{b} * d + c) * N + j];
  st.shift_pos = 0;
  st.shift_age = age;
  st.shift_current = true;
}

void H3::heads(H3State& st, const float* q, const float* k, const float* v, float* yp, int b,
               int h0, int h1) const {
  const int d = d_, p = p_, H = H_;
  const S4DStepParams* dyn = st.diag_dynamics.get();
  const int M = diag_ ? diag_->M() : 0;
  if (p == 1 && diag_) {  // channel h is head h: one run of channels
    const int64_t c0 = static_cast<int64_t>(b) * d + h0, n = h1 - h0;
    float* z = yp + c0;
    for (int64_t i = 0; i < n; ++i) z[i] = k[c0 + i] * v[c0 + i];
    dyn->step_channels(h0, n, st.diag.data() + c0 * M, z, D.value.data() + h0, z);
    for (int64_t i = 0; i < n; ++i) z[i] = q[c0 + i] * z[i];
    return;
  }
  for (int h = h0; h < h1; ++h)
    for (int j = 0; j < p; ++j) {
      const int64_t cj = static_cast<int64_t>(b) * d + h * p + j;
      float acc = 0.0f;
      for (int i = 0; i < p; ++i) {
        const int64_t ci = static_cast<int64_t>(b) * d + h * p + i;
        const float kvv = k[ci] * v[cj];
        float z = kvv;
        if (diag_) {
          const int64_t idx = static_cast<int64_t>((b * p + i) * p + j) * H + h;
          z = dyn->step(h, st.diag.data() + idx * M, kvv) + D.value[h] * kvv;
        }
        acc += q[ci] * z;
      }
      yp[cj] = acc;
    }
}

void H3::step_state(H3State& st, const float* q, float* k, const float* v, float* yp) const {
  const int B = st.B, d = d_, p = p_, H = H_, N = N_;
  const int64_t rows = static_cast<int64_t>(B) * d;
  if (diag_ && !st.diag_dynamics) st.diag_dynamics = diag_->step_params();
  if (shift_) {
    shift_dynamics(st);
    parallel_range(rows, worth_parallel_step(rows * N), [&](int64_t r0, int64_t r1) {
      shift_rows(st, k, r0, r1);
    });
    finish_shift_step(st);
  }
  const int M = diag_ ? diag_->M() : 0;
  // Over (b, h): the p*p diagonal SSMs of one head of one sequence, in runs within a sequence.
  const int64_t all_heads = static_cast<int64_t>(B) * H;
  parallel_range(all_heads, worth_parallel_step(rows * p * (M + 1)), [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1;) {
      const int b = static_cast<int>(g / H), h = static_cast<int>(g % H);
      const int h1 = static_cast<int>(std::min<int64_t>(H, h + (g1 - g)));
      heads(st, q, k, v, yp, b, h, h1);
      g += h1 - h;
    }
  });
}

void H3::step_many(const float* x, float* y, std::span<MixerState* const> states) const {
  HIPPO_CHECK(!states.empty(), "H3::step_many: no states");
  int64_t rows = 0;  // all states' sequences
  for (MixerState* s : states) rows += as_h3_state(*s, 0, false).B;
  H3State& first = as_h3_state(*states[0], 0, false);
  const int64_t n = rows * d_;
  float* q = first.q.get(sz(n));
  float* k = first.k.get(sz(n));
  float* v = first.v.get(sz(n));
  float* yp = first.y.get(sz(n));
  q_proj.forward(x, q, rows);
  k_proj.forward(x, k, rows);
  v_proj.forward(x, v, rows);
  int64_t off = 0;
  for (MixerState* s : states) {
    H3State& st = as_h3_state(*s, 0, false);
    step_state(st, q + off, k + off, v + off, yp + off);
    off += static_cast<int64_t>(st.B) * d_;
  }
  output_linear.forward(yp, y, rows);
}

void H3::prepare_team_step(std::span<MixerState* const> states) const {
  HIPPO_CHECK(!states.empty(), "H3::step_team: no states");
  int64_t rows = 0;
  for (MixerState* s : states) {
    H3State& st = as_h3_state(*s, 0, false);
    if (diag_ && !st.diag_dynamics) st.diag_dynamics = diag_->step_params();
    if (shift_) shift_dynamics(st);
    rows += st.B;
  }
  H3State& first = as_h3_state(*states[0], 0, false);
  for (Buffer* b : {&first.q, &first.k, &first.v, &first.y}) b->get(sz(rows * d_));
}

// Each thread takes whole heads of channels: its share of q, k and v is all its recurrent
// part reads, so the projections and the SSM steps run without a barrier between them.
void H3::step_team(const float* x, float* y, std::span<MixerState* const> states,
                   const Team& team) const {
  int64_t rows = 0;
  for (MixerState* s : states) rows += static_cast<H3State&>(*s).B;
  H3State& first = static_cast<H3State&>(*states[0]);
  float* q = first.q.data();
  float* k = first.k.data();
  float* v = first.v.data();
  float* yp = first.y.data();
  const int64_t align = std::lcm<int64_t>(16, p_);
  const auto [c0, c1] = team.share(d_, align);
  q_proj.forward_part(x, q, rows, c0, c1);
  k_proj.forward_part(x, k, rows, c0, c1);
  v_proj.forward_part(x, v, rows, c0, c1);
  int64_t off = 0;
  for (MixerState* s : states) {
    H3State& st = static_cast<H3State&>(*s);
    for (int b = 0; b < st.B; ++b) {
      const int64_t row = static_cast<int64_t>(b) * d_;
      if (shift_) shift_rows(st, k + off, row + c0, row + c1);
      heads(st, q + off, k + off, v + off, yp + off, b, static_cast<int>(c0 / p_),
            static_cast<int>(c1 / p_));
    }
    off += static_cast<int64_t>(st.B) * d_;
  }
  team.barrier();  // the output projection reads every thread's channels
  // Every thread's shift rows are done: the rings move on (read again only in the next step,
  // after the barriers of the layers in between).
  if (team.t == 0)
    for (MixerState* s : states) finish_shift_step(static_cast<H3State&>(*s));
  const auto [o0, o1] = team.share(d_);
  output_linear.forward_part(yp, y, rows, o0, o1);
}

void H3::release_activations() {
  release_buffers(x_, qT_, kT_, ks_, vT_, kv_, zD_, ypre_, Ks_, Kd_, tmp_, yT_, dyT_, dzD_, dkv_,
                  dks_, dk_, dKs_, dKd_);
  kv_ready_ = false;
  B_ = L_ = 0;
}

}  // namespace hippo
