// GCC 12's AVX-512 intrinsics start some results from an "undefined" register and the
// uninitialised-use warning fires inside the header when they are inlined.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "ssm/s4d.h"

#include <climits>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <vector>

#include "core/error.h"
#include "core/scratch.h"
#include "kernels/parallel_work.h"

namespace hippo {

namespace {

// The portable step, written on (re, im) float pairs: std::complex<float> multiplication keeps
// a NaN/Inf fix-up branch (a libgcc call) that stops the loop from vectorising. Inlined into
// each target below, so it is compiled once per level.
[[gnu::always_inline]] inline float step_portable(const float* a, const float* b,
                                                  const float* c, float* s, float u, int M) {
  float y = 0.0f;
#pragma omp simd reduction(+ : y)
  for (int n = 0; n < M; ++n) {
    const float xr = s[2 * n], xi = s[2 * n + 1];
    const float ar = a[2 * n], ai = a[2 * n + 1];
    const float nr = ar * xr - ai * xi + b[2 * n] * u;
    const float ni = ar * xi + ai * xr + b[2 * n + 1] * u;
    s[2 * n] = nr;
    s[2 * n + 1] = ni;
    y += c[2 * n] * nr - c[2 * n + 1] * ni;
  }
  return 2.0f * y;
}


// 8 modes per vector as interleaved (re, im) pairs; the complex product dA x by fmaddsub on
// the duplicated real and imaginary parts of dA and the pair-swapped x. The plain loop
// compiled to a scalar horizontal sum of 16 dependent adds per call (perf of batch-8
// decoding: H3::step was 9% of the run).
[[gnu::always_inline]] HIPPO_TARGET_AVX512 inline float step_avx512_body(
    const float* a, const float* b, const float* c, float* s, float u, int M) {
  const __m512 uv = _mm512_set1_ps(u);
  // The real part of C x is c_re x_re - c_im x_im: the odd (imaginary) lanes of C negated.
  const __m512 odd_neg = _mm512_castsi512_ps(_mm512_set_epi32(
      INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0,
      INT32_MIN, 0, INT32_MIN, 0));
  __m512 acc = _mm512_setzero_ps();
  for (int j = 0; j < 2 * M; j += 16) {
    const __m512 av = _mm512_loadu_ps(a + j), xv = _mm512_loadu_ps(s + j);
    const __m512 x_swap = _mm512_permute_ps(xv, 0xB1);  // (im, re) pairs
    const __m512 ax = _mm512_fmaddsub_ps(_mm512_moveldup_ps(av), xv,
                                         _mm512_mul_ps(_mm512_movehdup_ps(av), x_swap));
    const __m512 nv = _mm512_fmadd_ps(_mm512_loadu_ps(b + j), uv, ax);
    _mm512_storeu_ps(s + j, nv);
    acc = _mm512_fmadd_ps(_mm512_xor_ps(_mm512_loadu_ps(c + j), odd_neg), nv, acc);
  }
  return 2.0f * _mm512_reduce_add_ps(acc);
}

// The per-channel loop of s4d_step_channels around a step body, once per level.
#define HIPPO_S4D_CHANNELS(BODY)                                      \
  for (int64_t i = 0; i < n; ++i) {                                   \
    const float ui = u[i];                                            \
    const int64_t off = i * 2 * M;                                    \
    const float yi = BODY(a + off, b + off, c + off, s + off, ui, M); \
    y[i] = d ? yi + d[i] * ui : yi;                                   \
  }

void steps_scalar(const float* a, const float* b, const float* c, float* s, const float* u,
                  const float* d, float* y, int64_t n, int M) {
  HIPPO_S4D_CHANNELS(step_portable)
}

HIPPO_TARGET_AVX2 void steps_avx2(const float* a, const float* b, const float* c, float* s,
                                  const float* u, const float* d, float* y, int64_t n, int M) {
  HIPPO_S4D_CHANNELS(step_portable)
}

HIPPO_TARGET_AVX512 void steps_avx512(const float* a, const float* b, const float* c, float* s,
                                      const float* u, const float* d, float* y, int64_t n,
                                      int M) {
  HIPPO_S4D_CHANNELS(step_avx512_body)
}

#undef HIPPO_S4D_CHANNELS

}  // namespace

void s4d_step_channels(const float* a, const float* b, const float* c, float* s, const float* u,
                       const float* d, float* y, int64_t n, int M) {
  const Isa level = active_isa();
  if (level >= Isa::Avx512 && M % 8 == 0) return steps_avx512(a, b, c, s, u, d, y, n, M);
  if (level >= Isa::Avx2) return steps_avx2(a, b, c, s, u, d, y, n, M);
  steps_scalar(a, b, c, s, u, d, y, n, M);
}

float s4d_step(const float* a, const float* b, const float* c, float* s, float u, int M) {
  float y;
  s4d_step_channels(a, b, c, s, &u, nullptr, &y, 1, M);
  return y;
}

S4DKernel::S4DKernel(int H, int N, Discretization disc) : H_(H), M_(N / 2), disc_(disc) {
  HIPPO_CHECK(H >= 1, "S4DKernel: channels H=", H, " must be >= 1");
  HIPPO_CHECK(N >= 2 && N % 2 == 0, "S4DKernel: d_state N=", N, " must be even and >= 2");
  log_dt = make_param({H}, ParamKind::SsmDynamics);
  inv_A_real = make_param({H, M_}, ParamKind::SsmDynamics);
  A_imag = make_param({H, M_}, ParamKind::SsmDynamics);
  B = make_param({H, M_, 2}, ParamKind::SsmDynamics);
  C = make_param({1, H, M_, 2}, ParamKind::Decay);
  const size_t hm = static_cast<size_t>(H) * M_;
  dt_.resize(H);
  A_.resize(hm);
  Bc_.resize(hm);
  dA_.resize(hm);
  dB_.resize(hm);
  C_.resize(hm);
  step_.H = H;
  step_.M = M_;
  step_.dA.resize(hm);
  step_.dB.resize(hm);
  step_.C.resize(hm);
  work_.resize(hm * 8);
}

void S4DKernel::collect_params(const std::string& prefix, ParamList& out) {
  out.push_back({prefix + "log_dt", &log_dt});
  out.push_back({prefix + "inv_A_real", &inv_A_real});
  out.push_back({prefix + "A_imag", &A_imag});
  out.push_back({prefix + "B", &B});
  out.push_back({prefix + "C", &C});
}

void S4DKernel::init(Rng& rng, S4DInit kind) {
  const double pi = std::numbers::pi;
  const double N = 2.0 * M_;
  for (int h = 0; h < H_; ++h) {
    log_dt.value[h] = static_cast<float>(std::log(0.001) +
                                         rng.uniform() * (std::log(0.1) - std::log(0.001)));
    for (int n = 0; n < M_; ++n) {
      const int64_t i = static_cast<int64_t>(h) * M_ + n;
      inv_A_real.value[i] = static_cast<float>(std::log(0.5));
      A_imag.value[i] = static_cast<float>(kind == S4DInit::Lin ? pi * n
                                                                : N / pi * (N / (2 * n + 1) - 1));
      B.value[2 * i] = 1.0f;
      B.value[2 * i + 1] = 0.0f;
      // Complex standard normal: E|C|^2 = 1, as torch.randn(dtype=cfloat).
      C.value[2 * i] = static_cast<float>(rng.normal() * std::sqrt(0.5));
      C.value[2 * i + 1] = static_cast<float>(rng.normal() * std::sqrt(0.5));
    }
  }
}

void S4DKernel::discretize_mode(size_t i, double dt, cd& A, cd& Bn, cd& dA, cd& dB) const {
  A = cd(-std::exp(static_cast<double>(inv_A_real.value[i])), A_imag.value[i]);
  Bn = cd(B.value[2 * i], B.value[2 * i + 1]);
  const cd x = dt * A;
  if (disc_ == Discretization::Bilinear) {
    const cd den = 1.0 - 0.5 * x;
    dA = (1.0 + 0.5 * x) / den;
    dB = Bn * dt / den;
  } else {
    const cd e = std::exp(x);
    dA = e;
    dB = Bn * (e - 1.0) / A;
  }
}

void S4DKernel::discretize() {
  // A complex exp or division per mode: ~10 ms of a 125M-shape training step, serial (issue 18).
#pragma omp parallel for schedule(static) if (int64_t{H_} * M_ >= 4096)
  for (int h = 0; h < H_; ++h) {
    const double dt = std::exp(static_cast<double>(log_dt.value[h]));
    dt_[h] = dt;
    for (int n = 0; n < M_; ++n) {
      const size_t i = static_cast<size_t>(h) * M_ + n;
      discretize_mode(i, dt, A_[i], Bc_[i], dA_[i], dB_[i]);
      C_[i] = cd(C.value[2 * i], C.value[2 * i + 1]);
      step_.dA[i] = cf(dA_[i]);
      step_.dB[i] = cf(dB_[i]);
      step_.C[i] = cf(C_[i]);
    }
  }
}

std::vector<float> S4DKernel::param_values() const {
  std::vector<float> v;
  v.reserve(static_cast<size_t>(H_) * (1 + 6 * static_cast<size_t>(M_)));
  for (const Param* p : {&log_dt, &inv_A_real, &A_imag, &B, &C})
    v.insert(v.end(), p->value.data(), p->value.data() + p->value.numel());
  return v;
}

std::shared_ptr<const S4DStepParams> S4DKernel::step_params() const {
  std::vector<float> now = param_values();
  std::lock_guard<std::mutex> lock(step_mutex_);
  // Bitwise: a NaN parameter still matches itself, and -0.0 is not 0.0 to exp().
  if (step_cache_ && step_cache_->source.size() == now.size() &&
      std::memcmp(step_cache_->source.data(), now.data(), sizeof(float) * now.size()) == 0)
    return step_cache_;
  // The same arithmetic as discretize(), into a new object: bit-identical steps either way.
  auto p = std::make_shared<S4DStepParams>();
  const size_t hm = static_cast<size_t>(H_) * M_;
  p->H = H_;
  p->M = M_;
  p->dA.resize(hm);
  p->dB.resize(hm);
  p->C.resize(hm);
  for (int h = 0; h < H_; ++h) {
    const double dt = std::exp(static_cast<double>(log_dt.value[h]));
    for (int n = 0; n < M_; ++n) {
      const size_t i = static_cast<size_t>(h) * M_ + n;
      cd A, Bn, dA, dB;
      discretize_mode(i, dt, A, Bn, dA, dB);
      p->dA[i] = cf(dA);
      p->dB[i] = cf(dB);
      p->C[i] = cf(cd(C.value[2 * i], C.value[2 * i + 1]));
    }
  }
  p->source = std::move(now);
  step_cache_ = p;
  return p;
}

S4DKernel::Discrete S4DKernel::discretized() const {
  const size_t hm = static_cast<size_t>(H_) * M_;
  Discrete d{std::vector<cd>(hm), std::vector<cd>(hm), std::vector<cd>(hm)};
  for (int h = 0; h < H_; ++h) {
    const double dt = std::exp(static_cast<double>(log_dt.value[h]));
    for (int n = 0; n < M_; ++n) {
      const size_t i = static_cast<size_t>(h) * M_ + n;
      cd A, Bn;
      discretize_mode(i, dt, A, Bn, d.dA[i], d.dB[i]);
      d.C[i] = cd(C.value[2 * i], C.value[2 * i + 1]);
    }
  }
  return d;
}

void S4DKernel::kernel(const Discrete& dyn, float* K, int L) const {
  HIPPO_CHECK(L >= 0, "S4DKernel::kernel: L=", L, " must be >= 0");
  kernel_from(dyn.dA.data(), dyn.dB.data(), dyn.C.data(), K, L);
}

void S4DKernel::prompt_state(const Discrete& dyn, int h, const float* u, int L, cf* x) const {
  for (int n = 0; n < M_; ++n) x[n] = 0.0f;
  advance_from(dyn.dA.data(), dyn.dB.data(), h, u, L, x);
}

void S4DKernel::advance_state(const Discrete& dyn, int h, const float* u, int L, cf* x) const {
  advance_from(dyn.dA.data(), dyn.dB.data(), h, u, L, x);
}

void S4DKernel::state_output(const Discrete& dyn, const cf* x, float* y, int L) const {
  HIPPO_CHECK(L >= 0, "S4DKernel::state_output: L=", L, " must be >= 0");
  const size_t hm = static_cast<size_t>(H_) * M_;
  std::vector<cd> w(hm);  // dA x: kernel_from's 2 C w dA^j is then 2 C dA^(j+1) x
  for (size_t i = 0; i < hm; ++i) w[i] = dyn.dA[i] * cd(x[i]);
  kernel_from(dyn.dA.data(), w.data(), dyn.C.data(), y, L);
}

void S4DKernel::kernel(float* K, int L) {
  HIPPO_CHECK(L >= 0, "S4DKernel::kernel: L=", L, " must be >= 0");
  discretize();
  kernel_from(dA_.data(), dB_.data(), C_.data(), K, L);
}

// The body of kernel() on given dynamics: the members' snapshot (training) or a Discrete
// (const prefill). The parameters carry the members' names so that the body reads as before.
void S4DKernel::kernel_from(const cd* dA_, const cd* dB_, const cd* C_, float* K, int L) const {
  const int M = M_, T = kKernelChunk, chunks = (L + T - 1) / T;
#pragma omp parallel for schedule(static) if (worth_parallel(int64_t{H_} * M_ * L))
  for (int h = 0; h < H_; ++h) {
    // Per thread, grow-only: P (2M, T) holds Re then Im of dA^j; Q (chunks, 2M) holds
    // Re(2W dA^(cT)) and -Im(2W dA^(cT)), so that K[cT + j] = sum_k Q[c,k] P[k,j].
    thread_local ScratchBuffer Pbuf, Qbuf;
    float* P = Pbuf.get(static_cast<size_t>(2 * M * T));
    float* Q = Qbuf.get(static_cast<size_t>(chunks) * 2 * M);
    for (int n = 0; n < M; ++n) {
      const size_t i = static_cast<size_t>(h) * M + n;
      // Complex products written out: std::complex's operator* checks for NaN on every call.
      const double ar = dA_[i].real(), ai = dA_[i].imag();
      double zr = 1.0, zi = 0.0;
      for (int j = 0; j < T; ++j) {
        P[n * T + j] = static_cast<float>(zr);
        P[(M + n) * T + j] = static_cast<float>(zi);
        const double t = zr * ar - zi * ai;
        zi = zr * ai + zi * ar;
        zr = t;
      }
      // z = dA^T now; the chunk starts W dA^(cT) by the same kind of recurrence.
      const cd w0 = 2.0 * C_[i] * dB_[i];
      double wr = w0.real(), wi = w0.imag();
      for (int c = 0; c < chunks; ++c) {
        Q[c * 2 * M + n] = static_cast<float>(wr);
        Q[c * 2 * M + M + n] = static_cast<float>(-wi);
        const double t = wr * zr - wi * zi;
        wi = wr * zi + wi * zr;
        wr = t;
      }
    }
    float* k = K + static_cast<int64_t>(h) * L;
    // 16 positions at a time, so that the accumulators stay in one vector register.
    constexpr int kLanes = 16;
    static_assert(kKernelChunk % kLanes == 0);
    for (int c = 0; c < chunks; ++c) {
      const float* q = Q + c * 2 * M;
      const int len = std::min(T, L - c * T);
      for (int j0 = 0; j0 < len; j0 += kLanes) {
        float acc[kLanes] = {};
        for (int r = 0; r < 2 * M; ++r) {
          const float qr = q[r];
          const float* pr = P + r * T + j0;
#pragma omp simd
          for (int j = 0; j < kLanes; ++j) acc[j] += qr * pr[j];
        }
        const int n = std::min(kLanes, len - j0);
        for (int j = 0; j < n; ++j) k[c * T + j0 + j] = acc[j];
      }
    }
  }
}

void S4DKernel::kernel_reference(float* K, int L) {
  HIPPO_CHECK(L >= 0, "S4DKernel::kernel_reference: L=", L, " must be >= 0");
  discretize();
  const int M = M_;
  // dA^l by repeated multiplication in double (error grows like l * 1e-16, far below fp32).
  // The M modes are independent recurrences: held as structure-of-arrays so each step
  // vectorises across modes instead of walking M serial chains.
#pragma omp parallel for schedule(static) if (worth_parallel(int64_t{H_} * M_ * L))
  for (int h = 0; h < H_; ++h) {
    double* pr = work_.data() + static_cast<size_t>(h) * 8 * M;
    double* pi = pr + M;
    double* zr = pi + M;
    double* zi = zr + M;
    for (int n = 0; n < M; ++n) {
      const size_t i = static_cast<size_t>(h) * M + n;
      const cd w = 2.0 * C_[i] * dB_[i];
      pr[n] = w.real();
      pi[n] = w.imag();
      zr[n] = dA_[i].real();
      zi[n] = dA_[i].imag();
    }
    float* k = K + static_cast<int64_t>(h) * L;
    for (int l = 0; l < L; ++l) {
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (int n = 0; n < M; ++n) {
        s += pr[n];
        const double r = pr[n] * zr[n] - pi[n] * zi[n];
        pi[n] = pr[n] * zi[n] + pi[n] * zr[n];
        pr[n] = r;
      }
      k[l] = static_cast<float>(s);
    }
  }
}

// Gradients use the convention g = dLoss/dRe + i dLoss/dIm; for holomorphic w = F(z),
// g_z = conj(F'(z)) g_w, and for a real r, dLoss/dr = Re(conj(dw/dr) g_w).
void S4DKernel::kernel_backward(const float* dK, int L) {
  const int M = M_;
#pragma omp parallel for schedule(static) if (worth_parallel(int64_t{H_} * M_ * L))
  for (int h = 0; h < H_; ++h) {
    const float* g = dK + static_cast<int64_t>(h) * L;
    // Per mode: S0 = sum_l dK_l conj(z)^l and S1 = sum_l l dK_l conj(z)^(l-1)
    // = sum_m (m+1) dK_{m+1} conj(z)^m, both from one running power p = conj(z)^m.
    double* pr = work_.data() + static_cast<size_t>(h) * 8 * M;
    double* pi = pr + M;
    double* zr = pi + M;
    double* zi = zr + M;
    double* s0r = zi + M;
    double* s0i = s0r + M;
    double* s1r = s0i + M;
    double* s1i = s1r + M;
    for (int n = 0; n < M; ++n) {
      const size_t i = static_cast<size_t>(h) * M + n;
      pr[n] = 1.0;
      pi[n] = 0.0;
      zr[n] = dA_[i].real();
      zi[n] = -dA_[i].imag();
      s0r[n] = s0i[n] = s1r[n] = s1i[n] = 0.0;
    }
    for (int m = 0; m < L; ++m) {
      const double a = g[m];
      const double b = m + 1 < L ? static_cast<double>(m + 1) * g[m + 1] : 0.0;
#pragma omp simd
      for (int n = 0; n < M; ++n) {
        s0r[n] += a * pr[n];
        s0i[n] += a * pi[n];
        s1r[n] += b * pr[n];
        s1i[n] += b * pi[n];
        const double r = pr[n] * zr[n] - pi[n] * zi[n];
        pi[n] = pr[n] * zi[n] + pi[n] * zr[n];
        pr[n] = r;
      }
    }
    const double dt = dt_[h];
    double g_dt = 0.0;
    for (int n = 0; n < M; ++n) {
      const size_t i = static_cast<size_t>(h) * M + n;
      const cd W = C_[i] * dB_[i];
      const cd S0(s0r[n], s0i[n]), S1(s1r[n], s1i[n]);
      const cd gW = 2.0 * S0;             // K = 2 Re(W z^l)
      const cd gz = 2.0 * std::conj(W) * S1;
      const cd gC = std::conj(dB_[i]) * gW;
      const cd gdB = std::conj(C_[i]) * gW;
      // Partial derivatives of dA, dB wrt A (holomorphic), dt (real), B (holomorphic).
      const cd A = A_[i], Bn = Bc_[i], x = dt * A;
      cd dA_A, dA_dt, dB_A, dB_dt, dB_B;
      if (disc_ == Discretization::Bilinear) {
        const cd den = 1.0 - 0.5 * x, den2 = den * den;
        dA_A = dt / den2;
        dA_dt = A / den2;
        dB_B = dt / den;
        dB_A = Bn * dt * (0.5 * dt) / den2;
        dB_dt = Bn / den2;
      } else {
        const cd e = std::exp(x);
        dA_A = dt * e;
        dA_dt = A * e;
        dB_B = (e - 1.0) / A;
        dB_A = Bn * (x * e - e + 1.0) / (A * A);
        dB_dt = Bn * e;
      }
      const cd gA = std::conj(dA_A) * gz + std::conj(dB_A) * gdB;
      const cd gB = std::conj(dB_B) * gdB;
      g_dt += (std::conj(dA_dt) * gz).real() + (std::conj(dB_dt) * gdB).real();
      // A = -exp(inv_A_real) + i A_imag.
      inv_A_real.grad[i] += static_cast<float>(gA.real() * A.real());
      A_imag.grad[i] += static_cast<float>(gA.imag());
      B.grad[2 * i] += static_cast<float>(gB.real());
      B.grad[2 * i + 1] += static_cast<float>(gB.imag());
      C.grad[2 * i] += static_cast<float>(gC.real());
      C.grad[2 * i + 1] += static_cast<float>(gC.imag());
    }
    log_dt.grad[h] += static_cast<float>(g_dt * dt);
  }
}

void S4DKernel::prompt_state(int h, const float* u, int L, cf* x) const {
  for (int n = 0; n < M_; ++n) x[n] = 0.0f;
  advance_state(h, u, L, x);
}

namespace {
// The Horner recurrence of advance_state on one block of kAdvanceBlock modes (structure of
// arrays). Written once, compiled per instruction-set level (HIPPO_TARGET_*): 8 doubles per
// vector under AVX-512, 2 in a baseline x86-64 build (1.1% of a portable build's
// `bench generate` run, not in the native profile).
constexpr int kAdvanceBlock = 32;
[[gnu::always_inline]] inline void advance_body(const double* ar, const double* ai,
                                                const double* br, const double* bi, double* sr,
                                                double* si, const float* u, int L) {
  for (int l = 0; l < L; ++l) {
    const double v = u[l];
#pragma omp simd
    for (int j = 0; j < kAdvanceBlock; ++j) {
      const double r = ar[j] * sr[j] - ai[j] * si[j] + br[j] * v;
      si[j] = ar[j] * si[j] + ai[j] * sr[j] + bi[j] * v;
      sr[j] = r;
    }
  }
}
void advance_scalar(const double* ar, const double* ai, const double* br, const double* bi,
                    double* sr, double* si, const float* u, int L) {
  advance_body(ar, ai, br, bi, sr, si, u, L);
}
HIPPO_TARGET_AVX2 void advance_avx2(const double* ar, const double* ai, const double* br,
                                    const double* bi, double* sr, double* si, const float* u,
                                    int L) {
  advance_body(ar, ai, br, bi, sr, si, u, L);
}
HIPPO_TARGET_AVX512 void advance_avx512(const double* ar, const double* ai, const double* br,
                                        const double* bi, double* sr, double* si, const float* u,
                                        int L) {
  advance_body(ar, ai, br, bi, sr, si, u, L);
}
}  // namespace

void S4DKernel::advance_state(int h, const float* u, int L, cf* x) const {
  advance_from(dA_.data(), dB_.data(), h, u, L, x);
}

void S4DKernel::advance_from(const cd* dA_, const cd* dB_, int h, const float* u, int L,
                             cf* x) const {
  // Modes in blocks of kBlock: per token, one complex multiply-add per mode with no
  // dependence between modes, so the block is a few vector operations per token.
  constexpr int kBlock = kAdvanceBlock;
  const Isa level = active_isa();
  const auto advance = level >= Isa::Avx512 ? advance_avx512
                       : level >= Isa::Avx2 ? advance_avx2
                                            : advance_scalar;
  double ar[kBlock], ai[kBlock], br[kBlock], bi[kBlock], sr[kBlock], si[kBlock];
  for (int n0 = 0; n0 < M_; n0 += kBlock) {
    const int m = std::min(kBlock, M_ - n0);
    for (int j = 0; j < kBlock; ++j) {
      // Padding lanes run a zero recurrence and are never written back.
      const size_t i = static_cast<size_t>(h) * M_ + n0 + std::min(j, m - 1);
      const bool live = j < m;
      ar[j] = live ? dA_[i].real() : 0.0;
      ai[j] = live ? dA_[i].imag() : 0.0;
      br[j] = live ? dB_[i].real() : 0.0;
      bi[j] = live ? dB_[i].imag() : 0.0;
      sr[j] = live ? static_cast<double>(x[n0 + j].real()) : 0.0;
      si[j] = live ? static_cast<double>(x[n0 + j].imag()) : 0.0;
    }
    advance(ar, ai, br, bi, sr, si, u, L);
    for (int j = 0; j < m; ++j) x[n0 + j] = cf(static_cast<float>(sr[j]), static_cast<float>(si[j]));
  }
}

namespace {
// acc[r] = sum_j W[j, r] u[j] over one block of kAdvanceTableBlock tokens (W: (T, R)); compiled
// per ISA level. R = 64 (d_state 64, the usual) has its own copy with the 64 outputs in
// registers and two sets of accumulators (even and odd j), so that 8 independent vector chains
// hide the multiply-add latency (one 16-wide chain per output group was latency-bound).
template <int R>
[[gnu::always_inline]] inline void block_sum_fixed(const float* W, const float* u, float* acc) {
  constexpr int T = S4DKernel::kAdvanceTableBlock;
  static_assert(T % 2 == 0);
  float a[R] = {}, b[R] = {};
  for (int j = 0; j < T; j += 2) {
    const float v0 = u[j], v1 = u[j + 1];
    const float* w0 = W + static_cast<size_t>(j) * R;
    const float* w1 = w0 + R;
#pragma omp simd
    for (int r = 0; r < R; ++r) {
      a[r] += w0[r] * v0;
      b[r] += w1[r] * v1;
    }
  }
#pragma omp simd
  for (int r = 0; r < R; ++r) acc[r] = a[r] + b[r];
}
[[gnu::always_inline]] inline void block_sum_body(const float* W, const float* u, float* acc,
                                                  int R) {
  if (R == 64) return block_sum_fixed<64>(W, u, acc);
  constexpr int T = S4DKernel::kAdvanceTableBlock;
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  for (int j = 0; j < T; ++j) {
    const float v = u[j];
    const float* w = W + static_cast<size_t>(j) * R;
#pragma omp simd
    for (int r = 0; r < R; ++r) acc[r] += w[r] * v;
  }
}
void block_sum_scalar(const float* W, const float* u, float* acc, int R) {
  block_sum_body(W, u, acc, R);
}
HIPPO_TARGET_AVX2 void block_sum_avx2(const float* W, const float* u, float* acc, int R) {
  block_sum_body(W, u, acc, R);
}
HIPPO_TARGET_AVX512 void block_sum_avx512(const float* W, const float* u, float* acc, int R) {
  block_sum_body(W, u, acc, R);
}
}  // namespace

void S4DKernel::advance_table(const Discrete& dyn, int h, AdvanceTable& t) const {
  constexpr int T = kAdvanceTableBlock;
  const int M = M_;
  constexpr int kMaxM = 256;
  HIPPO_CHECK(M <= kMaxM, "S4DKernel::advance_table: ", M, " modes, at most ", kMaxM);
  t.W.resize(static_cast<size_t>(T) * 2 * M);
  t.dAT.resize(static_cast<size_t>(M));
  const cd* dA = dyn.dA.data() + static_cast<size_t>(h) * M;
  const cd* dB = dyn.dB.data() + static_cast<size_t>(h) * M;
  // The M modes' recurrences side by side (structure of arrays, modes innermost), so that they
  // fill the vector units: one mode at a time was a chain of 2T dependent complex products per
  // mode, 3.3% of a 512-token 125M H3 prefill (session 9 profile). Same operations per mode.
  double ar[kMaxM], ai[kMaxM], zr[kMaxM], zi[kMaxM], pr[kMaxM], pi[kMaxM];
  for (int n = 0; n < M; ++n) {
    ar[n] = dA[n].real();
    ai[n] = dA[n].imag();
    zr[n] = dB[n].real();  // dA^k dB, k = 0, 1, ...
    zi[n] = dB[n].imag();
    pr[n] = 1.0;  // dA^k
    pi[n] = 0.0;
  }
  for (int k = 0; k < T; ++k) {
    float* wr = t.W.data() + static_cast<size_t>(T - 1 - k) * 2 * M;
    float* wi = wr + M;
#pragma omp simd
    for (int n = 0; n < M; ++n) {
      wr[n] = static_cast<float>(zr[n]);
      wi[n] = static_cast<float>(zi[n]);
      const double r = zr[n] * ar[n] - zi[n] * ai[n];
      zi[n] = zr[n] * ai[n] + zi[n] * ar[n];
      zr[n] = r;
      const double q = pr[n] * ar[n] - pi[n] * ai[n];
      pi[n] = pr[n] * ai[n] + pi[n] * ar[n];
      pr[n] = q;
    }
  }
  for (int n = 0; n < M; ++n) t.dAT[static_cast<size_t>(n)] = cd(pr[n], pi[n]);
}

void S4DKernel::advance_state_blocked(const Discrete& dyn, const AdvanceTable& table, int h,
                                      const float* u, int L, cf* x) const {
  constexpr int T = kAdvanceTableBlock;
  const int M = M_, head = L % T;  // with L < T the table is not read
  if (head > 0) advance_from(dyn.dA.data(), dyn.dB.data(), h, u, head, x);
  if (L == head) return;
  // 2M accumulators of one block; M is small (d_state / 2), the stack is enough.
  constexpr int kMaxM = 256;
  HIPPO_CHECK(M <= kMaxM, "S4DKernel::advance_state_blocked: ", M, " modes, at most ", kMaxM);
  double sr[kMaxM], si[kMaxM];
  for (int n = 0; n < M; ++n) {
    sr[n] = x[n].real();
    si[n] = x[n].imag();
  }
  HIPPO_CHECK(table.W.size() == static_cast<size_t>(T) * 2 * M && table.dAT.size() == static_cast<size_t>(M),
              "S4DKernel::advance_state_blocked: the table is not one head's of this kernel");
  const float* W = table.W.data();
  const cd* dAT = table.dAT.data();
  float acc[2 * kMaxM];
  const Isa level = active_isa();
  const auto block_sum = level >= Isa::Avx512 ? block_sum_avx512
                         : level >= Isa::Avx2 ? block_sum_avx2
                                              : block_sum_scalar;
  for (int l0 = head; l0 < L; l0 += T) {
    block_sum(W, u + l0, acc, 2 * M);
    for (int n = 0; n < M; ++n) {
      const double ar = dAT[n].real(), ai = dAT[n].imag();
      const double r = ar * sr[n] - ai * si[n] + acc[n];
      si[n] = ar * si[n] + ai * sr[n] + acc[M + n];
      sr[n] = r;
    }
  }
  for (int n = 0; n < M; ++n) x[n] = cf(static_cast<float>(sr[n]), static_cast<float>(si[n]));
}

void S4DKernel::advance_state_reference(int h, const float* u, int L, cf* x) const {
  // Horner form of the sum: the recurrence itself, in double.
  for (int n = 0; n < M_; ++n) {
    const size_t i = static_cast<size_t>(h) * M_ + n;
    const cd a = dA_[i], b = dB_[i];
    cd s(x[n]);
    for (int l = 0; l < L; ++l) s = a * s + b * static_cast<double>(u[l]);
    x[n] = cf(s);
  }
}

}  // namespace hippo
