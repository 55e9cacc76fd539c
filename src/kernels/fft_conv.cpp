#include "kernels/fft_conv.h"

#include <fftw3.h>

#include <complex>
#include <cstdint>
#include <cstring>
#include <map>

#include "core/buffer.h"
#include "core/error.h"
#include "core/scratch.h"
#include "kernels/parallel_work.h"

namespace hippo {

std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}

int fft_conv_size(int L) {
  int n = 2;
  while (n < 2 * L) n *= 2;
  return n;
}

namespace {

struct Plans {
  fftwf_plan r2c = nullptr, c2r = nullptr;
};

// The plans of every size, destroyed (with FFTW's own planner data) at exit, so that leak
// checkers see a clean process.
struct PlanCache {
  std::map<int, Plans> plans;
  ~PlanCache() {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    for (auto& [n, p] : plans) {
      fftwf_destroy_plan(p.r2c);
      fftwf_destroy_plan(p.c2r);
    }
    fftwf_cleanup();
  }
};

// Plans are made once per size on 64-byte aligned scratch and executed (new-array API,
// thread safe) on per-thread buffers of the same alignment. They live for the process.
Plans plans_for(int n) {
  static PlanCache holder;
  std::map<int, Plans>& cache = holder.plans;
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  auto it = cache.find(n);
  if (it != cache.end()) return it->second;
  Buffer re, co;
  float* r = re.get(n);
  auto* c = reinterpret_cast<fftwf_complex*>(co.get(2 * (n / 2 + 1)));
  Plans p;
  p.r2c = fftwf_plan_dft_r2c_1d(n, r, c, FFTW_ESTIMATE);
  p.c2r = fftwf_plan_dft_c2r_1d(n, c, r, FFTW_ESTIMATE);
  HIPPO_CHECK(p.r2c && p.c2r, "fft_causal_conv: FFTW could not plan size ", n);
  cache[n] = p;
  return p;
}

using cf = std::complex<float>;

// Per-thread scratch, grown once and reused across calls.
struct Scratch {
  ScratchBuffer real, a, b, c, d;
  float* r(int n) { return real.get(n); }
  cf* ca(int m) { return reinterpret_cast<cf*>(a.get(2 * static_cast<size_t>(m))); }
  cf* cb(int m) { return reinterpret_cast<cf*>(b.get(2 * static_cast<size_t>(m))); }
  cf* cc(int m) { return reinterpret_cast<cf*>(c.get(2 * static_cast<size_t>(m))); }
  cf* cd(int m) { return reinterpret_cast<cf*>(d.get(2 * static_cast<size_t>(m))); }
};
thread_local Scratch tls;

// out = rfft(x zero-padded to n).
void rfft_padded(const Plans& p, float* real, const float* x, int L, int n, cf* out) {
  std::memcpy(real, x, sizeof(float) * L);
  std::memset(real + L, 0, sizeof(float) * (n - L));
  fftwf_execute_dft_r2c(p.r2c, real, reinterpret_cast<fftwf_complex*>(out));
}

// real = irfft(spec) (unnormalised; destroys spec).
void irfft(const Plans& p, cf* spec, float* real) {
  fftwf_execute_dft_c2r(p.c2r, reinterpret_cast<fftwf_complex*>(spec), real);
}

void check_shapes(const char* what, int B, int H, int L) {
  HIPPO_CHECK(B >= 0 && H >= 0 && L >= 0, what, ": negative shape B=", B, " H=", H, " L=", L);
}

}  // namespace

void fft_causal_conv(const float* u, const float* K, float* y, int B, int H, int L) {
  check_shapes("fft_causal_conv", B, H, L);
  if (B == 0 || H == 0 || L == 0) return;
  const int n = fft_conv_size(L), m = n / 2 + 1;
  const Plans p = plans_for(n);
  const float scale = 1.0f / static_cast<float>(n);
#pragma omp parallel for schedule(dynamic) if (worth_parallel(int64_t{B} * H * n))
  for (int h = 0; h < H; ++h) {
    Scratch& s = tls;
    float* real = s.r(n);
    cf* kf = s.ca(m);
    cf* uf = s.cb(m);
    rfft_padded(p, real, K + static_cast<int64_t>(h) * L, L, n, kf);
    for (int b = 0; b < B; ++b) {
      const int64_t off = (static_cast<int64_t>(b) * H + h) * L;
      rfft_padded(p, real, u + off, L, n, uf);
      for (int i = 0; i < m; ++i) uf[i] *= kf[i];
      irfft(p, uf, real);
      float* ys = y + off;
      for (int t = 0; t < L; ++t) ys[t] = real[t] * scale;
    }
  }
}

void fft_causal_conv_backward(const float* u, const float* K, const float* dy, float* du,
                              float* dK_accum, int B, int H, int L) {
  check_shapes("fft_causal_conv_backward", B, H, L);
  if (B == 0 || H == 0 || L == 0) return;
  const int n = fft_conv_size(L), m = n / 2 + 1;
  const Plans p = plans_for(n);
  const float scale = 1.0f / static_cast<float>(n);
  // Correlations: with n >= 2L the wrapped negative lags land in K's zero padding.
#pragma omp parallel for schedule(dynamic) if (worth_parallel(int64_t{B} * H * n))
  for (int h = 0; h < H; ++h) {
    Scratch& s = tls;
    float* real = s.r(n);
    cf* kf = s.ca(m);
    cf* gf = s.cb(m);
    cf* acc = s.cc(m);
    cf* uf = s.cd(m);
    rfft_padded(p, real, K + static_cast<int64_t>(h) * L, L, n, kf);
    for (int i = 0; i < m; ++i) acc[i] = 0.0f;
    for (int b = 0; b < B; ++b) {
      const int64_t off = (static_cast<int64_t>(b) * H + h) * L;
      rfft_padded(p, real, u + off, L, n, uf);
      rfft_padded(p, real, dy + off, L, n, gf);
      for (int i = 0; i < m; ++i) {
        acc[i] += std::conj(uf[i]) * gf[i];
        gf[i] *= std::conj(kf[i]);
      }
      irfft(p, gf, real);
      float* dus = du + off;
      for (int t = 0; t < L; ++t) dus[t] = real[t] * scale;
    }
    irfft(p, acc, real);
    float* dk = dK_accum + static_cast<int64_t>(h) * L;
    for (int t = 0; t < L; ++t) dk[t] += real[t] * scale;
  }
}

}  // namespace hippo
