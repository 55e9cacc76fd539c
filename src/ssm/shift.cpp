// GCC 12's AVX-512 intrinsics start some results from an "undefined" register and the
// uninitialised-use warning fires inside the header when they are inlined.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "ssm/shift.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/parallel_work.h"

namespace hippo {

namespace {

// The portable step: top down, every slot is read before it is overwritten, so shift and
// update go in one pass. Inlined into each target below, so it is compiled once per level.
[[gnu::always_inline]] inline float step_portable(const float* b, const float* c, float* s,
                                                  float u, int N) {
  for (int n = N - 1; n > 0; --n) s[n] = s[n - 1] + b[n] * u;
  s[0] = b[0] * u;
  float y = 0.0f;
#pragma omp simd reduction(+ : y)
  for (int n = 0; n < N; ++n) y += c[n] * s[n];
  return y;
}

// The state in 16-float vectors, each shifted up by one with the top lane of the vector below
// (valignd), bottom up, keeping each vector's old value in a register for the next one; one
// reduction at the end. The plain loop compiled to a scalar horizontal sum of 16 dependent adds
// per call (perf of batch-8 decoding: H3::step was 9% of the run). Bottom up rather than top
// down: 1.12-1.14x faster over the 125M hybrid's states streamed from memory (session 15,
// bench/shift_step_ab), as the hardware prefetchers follow ascending addresses better.
[[gnu::always_inline]] HIPPO_TARGET_AVX512 inline float step_avx512_body(const float* b,
                                                                         const float* c, float* s,
                                                                         float u, int N) {
  const __m512 uv = _mm512_set1_ps(u);
  __m512 acc = _mm512_setzero_ps();
  __m512 below = _mm512_setzero_ps();  // the old s[j - 16, j)
  for (int j = 0; j < N; j += 16) {
    const __m512 cur = _mm512_loadu_ps(s + j);
    const __m512 up = _mm512_castsi512_ps(
        _mm512_alignr_epi32(_mm512_castps_si512(cur), _mm512_castps_si512(below), 15));
    const __m512 nv = _mm512_fmadd_ps(_mm512_loadu_ps(b + j), uv, up);
    _mm512_storeu_ps(s + j, nv);
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(c + j), nv, acc);
    below = cur;
  }
  return _mm512_reduce_add_ps(acc);
}

// The per-channel loop of shift_step_channels around a step body, once per level.
#define HIPPO_SHIFT_CHANNELS(BODY)                                    \
  for (int64_t i = 0; i < n; ++i) {                                   \
    const float ui = u[i];                                            \
    const int64_t off = i * N;                                        \
    const float yi = BODY(b + off, c + off, s + off, ui, N);          \
    y[i] = d ? yi + d[i] * ui : yi;                                   \
  }

void steps_scalar(const float* b, const float* c, float* s, const float* u, const float* d,
                  float* y, int64_t n, int N) {
  HIPPO_SHIFT_CHANNELS(step_portable)
}

HIPPO_TARGET_AVX2 void steps_avx2(const float* b, const float* c, float* s, const float* u,
                                  const float* d, float* y, int64_t n, int N) {
  HIPPO_SHIFT_CHANNELS(step_portable)
}

HIPPO_TARGET_AVX512 void steps_avx512(const float* b, const float* c, float* s, const float* u,
                                      const float* d, float* y, int64_t n, int N) {
  HIPPO_SHIFT_CHANNELS(step_avx512_body)
}

#undef HIPPO_SHIFT_CHANNELS

// shift_ring_step, channel vectors across, rows of KT and of the ring in order of j (each a
// contiguous run of the channels), the sums kept in y. Inlined into each target below.
[[gnu::always_inline]] inline void ring_portable(const float* KT, const float* ring, int pos,
                                                 int H, int N, const float* d, float* y,
                                                 int64_t c0, int64_t c1) {
  for (int j = 0; j < N; ++j) {
    const float* k = KT + static_cast<int64_t>(j) * H;
    const float* r = ring + static_cast<int64_t>((pos + j) % N) * H;
    if (j == 0) {
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) y[c] = k[c] * r[c];
    } else {
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) y[c] += k[c] * r[c];
    }
  }
  if (d) {
    const float* u = ring + static_cast<int64_t>(pos) * H;
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) y[c] += d[c] * u[c];
  }
}

void ring_scalar(const float* KT, const float* ring, int pos, int H, int N, const float* d,
                 float* y, int64_t c0, int64_t c1) {
  ring_portable(KT, ring, pos, H, N, d, y, c0, c1);
}

HIPPO_TARGET_AVX2 void ring_avx2(const float* KT, const float* ring, int pos, int H, int N,
                                 const float* d, float* y, int64_t c0, int64_t c1) {
  ring_portable(KT, ring, pos, H, N, d, y, c0, c1);
}

// The same sums with explicit FMAs and a masked last vector (GCC's vectorised loop leaves a
// scalar remainder per row).
HIPPO_TARGET_AVX512 void ring_avx512(const float* KT, const float* ring, int pos, int H, int N,
                                     const float* d, float* y, int64_t c0, int64_t c1) {
  for (int j = 0; j < N; ++j) {
    const float* k = KT + static_cast<int64_t>(j) * H;
    const float* r = ring + static_cast<int64_t>((pos + j) % N) * H;
    for (int64_t c = c0; c < c1; c += 16) {
      const __mmask16 m = c1 - c >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (c1 - c)) - 1);
      const __m512 kr = _mm512_maskz_loadu_ps(m, k + c), rr = _mm512_maskz_loadu_ps(m, r + c);
      const __m512 acc = j == 0 ? _mm512_mul_ps(kr, rr)
                                : _mm512_fmadd_ps(kr, rr, _mm512_maskz_loadu_ps(m, y + c));
      _mm512_mask_storeu_ps(y + c, m, acc);
    }
  }
  if (d) {
    const float* u = ring + static_cast<int64_t>(pos) * H;
    for (int64_t c = c0; c < c1; c += 16) {
      const __mmask16 m = c1 - c >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (c1 - c)) - 1);
      _mm512_mask_storeu_ps(y + c, m,
                            _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, d + c),
                                            _mm512_maskz_loadu_ps(m, u + c),
                                            _mm512_maskz_loadu_ps(m, y + c)));
    }
  }
}

}  // namespace

void shift_ring_step(const float* KT, const float* ring, int pos, int H, int N, const float* d,
                     float* y, int64_t c0, int64_t c1) {
  const Isa level = active_isa();
  if (level >= Isa::Avx512) return ring_avx512(KT, ring, pos, H, N, d, y, c0, c1);
  if (level >= Isa::Avx2) return ring_avx2(KT, ring, pos, H, N, d, y, c0, c1);
  ring_scalar(KT, ring, pos, H, N, d, y, c0, c1);
}

void shift_step_channels(const float* b, const float* c, float* s, const float* u,
                         const float* d, float* y, int64_t n, int N) {
  const Isa level = active_isa();
  if (level >= Isa::Avx512 && N % 16 == 0) return steps_avx512(b, c, s, u, d, y, n, N);
  if (level >= Isa::Avx2) return steps_avx2(b, c, s, u, d, y, n, N);
  steps_scalar(b, c, s, u, d, y, n, N);
}

float shift_step(const float* b, const float* c, float* s, float u, int N) {
  float y;
  shift_step_channels(b, c, s, &u, nullptr, &y, 1, N);
  return y;
}

ShiftKernel::ShiftKernel(int H, int N) : H_(H), N_(N) {
  HIPPO_CHECK(H >= 1, "ShiftKernel: channels H=", H, " must be >= 1");
  HIPPO_CHECK(N >= 1, "ShiftKernel: d_state N=", N, " must be >= 1");
  B = make_param({H, N}, ParamKind::SsmDynamics);
  C = make_param({1, H, N}, ParamKind::Decay);
}

void ShiftKernel::collect_params(const std::string& prefix, ParamList& out) {
  out.push_back({prefix + "B", &B});
  out.push_back({prefix + "C", &C});
}

void ShiftKernel::init(Rng& rng) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(N_));
  for (int h = 0; h < H_; ++h)
    for (int n = 0; n < N_; ++n) {
      const int64_t i = static_cast<int64_t>(h) * N_ + n;
      B.value[i] = n == 0 ? 1.0f : 0.0f;
      C.value[i] = rng.uniform(-bound, bound);
    }
}

// Both ~N^2/2 double multiply-adds per channel: a few ms per call at d 768, N 64, split over
// the threads by channel (issue 18: serial, they were the largest serial part of a training step).
void ShiftKernel::kernel(float* K) const {
#pragma omp parallel for schedule(static) if (worth_parallel(int64_t{H_} * N_ * N_))
  for (int h = 0; h < H_; ++h) {
    const float* b = B.value.data() + static_cast<int64_t>(h) * N_;
    const float* c = C.value.data() + static_cast<int64_t>(h) * N_;
    float* k = K + static_cast<int64_t>(h) * N_;
    for (int j = 0; j < N_; ++j) {
      double acc = 0.0;
      for (int m = 0; m + j < N_; ++m) acc += static_cast<double>(b[m]) * c[m + j];
      k[j] = static_cast<float>(acc);
    }
  }
}

void ShiftKernel::kernel_backward(const float* dK) {
#pragma omp parallel for schedule(static) if (worth_parallel(int64_t{H_} * N_ * N_))
  for (int h = 0; h < H_; ++h) {
    const int64_t off = static_cast<int64_t>(h) * N_;
    const float* b = B.value.data() + off;
    const float* c = C.value.data() + off;
    float* gb = B.grad.data() + off;
    float* gc = C.grad.data() + off;
    const float* g = dK + off;
    for (int m = 0; m < N_; ++m) {
      double acc = 0.0;
      for (int j = 0; m + j < N_; ++j) acc += static_cast<double>(g[j]) * c[m + j];
      gb[m] += static_cast<float>(acc);
    }
    for (int n = 0; n < N_; ++n) {
      double acc = 0.0;  // C[n] meets B[m] at tap j = n - m
      for (int m = 0; m <= n; ++m) acc += static_cast<double>(g[n - m]) * b[m];
      gc[n] += static_cast<float>(acc);
    }
  }
}

std::shared_ptr<const ShiftStepParams> ShiftKernel::step_params() const {
  const size_t n = static_cast<size_t>(H_) * N_;
  std::lock_guard<std::mutex> lock(step_mutex_);
  // Bitwise: a NaN parameter still matches itself.
  if (step_cache_ && std::memcmp(step_cache_->B.data(), B.value.data(), sizeof(float) * n) == 0 &&
      std::memcmp(step_cache_->C.data(), C.value.data(), sizeof(float) * n) == 0)
    return step_cache_;
  auto p = std::make_shared<ShiftStepParams>();
  p->H = H_;
  p->N = N_;
  p->B.assign(B.value.data(), B.value.data() + n);
  p->C.assign(C.value.data(), C.value.data() + n);
  std::vector<float> K(n);
  kernel(K.data());  // the prefill's kernel: its values, in double then rounded
  p->KT.resize(n);
  for (int h = 0; h < H_; ++h)
    for (int j = 0; j < N_; ++j)
      p->KT[static_cast<size_t>(j) * H_ + h] = K[static_cast<size_t>(h) * N_ + j];
  step_cache_ = p;
  return p;
}

void ShiftKernel::ring_state(const float* b, const float* ring, int pos, int H, int N, int h,
                             float* s) {
  const float* bh = b + static_cast<int64_t>(h) * N;
  for (int n = 0; n < N; ++n) {
    double acc = 0.0;
    for (int j = 0; j <= n; ++j)
      acc += static_cast<double>(bh[n - j]) * ring[static_cast<int64_t>((pos + j) % N) * H + h];
    s[n] = static_cast<float>(acc);
  }
}

void ShiftKernel::prompt_state(int h, const float* u, int L, float* s) const {
  const float* b = B.value.data() + static_cast<int64_t>(h) * N_;
  for (int n = 0; n < N_; ++n) {
    double acc = 0.0;
    for (int m = 0; m <= n; ++m) {
      const int t = L - 1 - (n - m);
      if (t >= 0) acc += static_cast<double>(b[m]) * u[t];
    }
    s[n] = static_cast<float>(acc);
  }
}

void ShiftKernel::advance_state(int h, const float* u, int L, float* s) const {
  // prompt_state's sums without its per-term bounds test and allocation, vectorised (the
  // double sum reassociated): with w[i] = u[L-1-i] the last R = min(L, N) inputs newest first,
  // s[n] = shift^L(s)[n] + sum_{m = max(0, n-L+1)}^{n} b[m] w[n-m], a causal convolution of b
  // with w cut at N outputs. Tap by tap (an axpy over n), which vectorises: a dot product per n
  // (the form before) was 2.5% of a 512-token 125M H3 prefill (session 9 profile).
  const float* b = B.value.data() + static_cast<int64_t>(h) * N_;
  const int N = N_, R = std::min(L, N);
  thread_local std::vector<double> accv, wv;  // grow-only: no allocation per channel
  if (accv.size() < static_cast<size_t>(N)) accv.resize(static_cast<size_t>(N));
  if (wv.size() < static_cast<size_t>(N)) wv.resize(static_cast<size_t>(N));
  double* acc = accv.data();
  double* w = wv.data();
  for (int i = 0; i < R; ++i) w[i] = u[L - 1 - i];
  for (int n = 0; n < N; ++n) acc[n] = 0.0;
  for (int m = 0; m < N; ++m) {
    const double bm = b[m];
    double* a = acc + m;
    const int len = std::min(R, N - m);
#pragma omp simd
    for (int i = 0; i < len; ++i) a[i] += bm * w[i];
  }
  // From the top, so that s[n - L] is read before it is overwritten.
  for (int n = N - 1; n >= 0; --n)
    s[n] = static_cast<float>(acc[n]) + (n >= L ? s[n - L] : 0.0f);
}

void ShiftKernel::add_state_output(int h, const float* s, int L, float* y) const {
  const float* c = C.value.data() + static_cast<int64_t>(h) * N_;
  const int J = std::min(L, N_ - 1);
  for (int j = 0; j < J; ++j) {
    double acc = 0.0;
    for (int n = j + 1; n < N_; ++n) acc += static_cast<double>(c[n]) * s[n - j - 1];
    y[j] += static_cast<float>(acc);
  }
}

}  // namespace hippo
