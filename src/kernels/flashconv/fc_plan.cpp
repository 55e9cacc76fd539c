// Twiddle tables for the packed real FFT, built once per size and kept for the process.
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "kernels/flashconv/fc_internal.h"

namespace hippo::fc {

namespace {

struct OwnedPlan {
  FftPlan plan;
  std::vector<float> tw, pw_re, pw_im;
};

int bit_reverse(int x, int bits) {
  int r = 0;
  for (int i = 0; i < bits; ++i) r |= ((x >> i) & 1) << (bits - 1 - i);
  return r;
}

std::unique_ptr<OwnedPlan> build_plan(int N) {
  auto p = std::make_unique<OwnedPlan>();
  int lg = 0;
  while ((1 << lg) < N) ++lg;
  p->plan.N = N;
  p->plan.log2N = lg;
  const double pi = 3.14159265358979323846;
  for (int s = N / 4; s >= 1; s /= 4) {
    int ls = 0;
    while ((1 << ls) < s) ++ls;
    p->plan.off[ls] = static_cast<int>(p->tw.size());
    size_t base = p->tw.size();
    p->tw.resize(base + 6 * static_cast<size_t>(s));
    for (int j = 0; j < s; ++j)
      for (int e = 1; e <= 3; ++e) {
        double a = -2.0 * pi * e * j / (4.0 * s);
        p->tw[base + (2 * (e - 1)) * s + j] = static_cast<float>(std::cos(a));
        p->tw[base + (2 * (e - 1) + 1) * s + j] = static_cast<float>(std::sin(a));
      }
  }
  p->pw_re.resize(N);
  p->pw_im.resize(N);
  for (int q = 0; q < N; ++q) {
    double a = -2.0 * pi * bit_reverse(q, lg) / (2.0 * N);
    p->pw_re[q] = static_cast<float>(std::cos(a));
    p->pw_im[q] = static_cast<float>(std::sin(a));
  }
  p->plan.tw = p->tw.data();
  p->plan.pw_re = p->pw_re.data();
  p->plan.pw_im = p->pw_im.data();
  return p;
}

}  // namespace

Tuning& tuning() {
  static Tuning t;
  return t;
}

int fft_size_for(int L) {
  int N = 2;
  while (N < L) N *= 2;
  return N;
}

const FftPlan& fft_plan(int N) {
  HIPPO_CHECK(N >= 2 && (N & (N - 1)) == 0 && N <= (1 << 28), "flashconv: FFT size ", N,
              " must be a power of two in [2, 2^28]");
  static std::mutex mu;
  static std::map<int, std::unique_ptr<OwnedPlan>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[N];
  if (!slot) slot = build_plan(N);
  return slot->plan;
}

}  // namespace hippo::fc
