// The H3 decode step's two SSMs (issue 18, session 15), in one process: the 125M hybrid's 11
// H3 layers of shift SSM (B, C, state: 768 channels of N 64) and diagonal SSM (dA, dB, C,
// state: 768 channels of 32 complex modes), stepped as a decode step does, with a stand-in for
// each layer's weights (13 MB) streamed before its SSMs so that they come from memory.
//   A: session 14's step: one call per channel, the shift state updated top down (its AVX-512
//      body is kept below as it was);
//   B: shift_step_channels / s4d_step_channels over all 768 channels, bottom up (the
//      shift-and-update form a loaded state steps with for its first N steps);
//   C: the shift SSM's ring form (the default: a step reads the kernel and the ring of the last
//      N inputs and writes one input per channel; shift_ring_step); the diagonal SSM as B.
// Each runs on its own copy of the states, the three in rotated order every round. Prints the
// median time per step of each SSM, GB/s of the bytes it moves (parameters read, state read
// and written) and the median per-round time ratios.
// Usage: ssm_step_ab [ROUNDS=40]   (AVX-512 machines: A's shift body needs it)
// GCC 12's AVX-512 intrinsics start some results from an "undefined" register (a false
// uninitialised-use warning when they are inlined).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/cpu_features.h"
#include "ssm/s4d.h"
#include "ssm/shift.h"

using namespace hippo;

namespace {

constexpr int kLayers = 11, kH = 768, kN = 64, kM = 32;

// Session 14's AVX-512 shift step (src/ssm/shift.cpp before session 15): top down.
HIPPO_TARGET_AVX512 float shift_top_down(const float* b, const float* c, float* s, float u,
                                         int N) {
  const __m512 uv = _mm512_set1_ps(u);
  __m512 acc = _mm512_setzero_ps();
  __m512 hi = _mm512_loadu_ps(s + N - 16);
  for (int j = N - 16; j >= 0; j -= 16) {
    const __m512 lo = j > 0 ? _mm512_loadu_ps(s + j - 16) : _mm512_setzero_ps();
    const __m512 up = _mm512_castsi512_ps(
        _mm512_alignr_epi32(_mm512_castps_si512(hi), _mm512_castps_si512(lo), 15));
    const __m512 nv = _mm512_fmadd_ps(_mm512_loadu_ps(b + j), uv, up);
    _mm512_storeu_ps(s + j, nv);
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(c + j), nv, acc);
    hi = lo;
  }
  return _mm512_reduce_add_ps(acc);
}

// Session 14's per-channel call: the path picked in every call.
[[gnu::noinline]] float shift_call(const float* b, const float* c, float* s, float u, int N) {
  if (active_isa() >= Isa::Avx512 && N % 16 == 0) return shift_top_down(b, c, s, u, N);
  return shift_step(b, c, s, u, N);
}

float* floats(size_t n, std::mt19937& g, float scale) {
  auto* p = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64));
  if (!p) {
    std::fprintf(stderr, "ssm_step_ab: out of memory\n");
    std::exit(1);
  }
  std::normal_distribution<float> nd(0, scale);
  for (size_t i = 0; i < n; ++i) p[i] = nd(g);
  return p;
}

struct Layer {
  float *sb, *sc, *ss;      // shift B, C, state (H, N)
  float *a, *b, *c, *x;     // diag dA, dB, C, state (H, M) complex pairs
  float *kt, *ring;         // ring form: kernel (N, H), ring (N, H)
  int pos;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int pairs = argc > 1 ? std::atoi(argv[1]) : 40;
  if (pairs < 1) {
    std::fprintf(stderr, "ssm_step_ab: ROUNDS must be a positive integer\n");
    return 2;
  }
  if (active_isa() < Isa::Avx512) {
    std::fprintf(stderr, "ssm_step_ab: needs AVX-512 (session 14's shift body)\n");
    return 2;
  }
  std::mt19937 g(1);
  const size_t hn = size_t{kH} * kN, hm2 = size_t{kH} * kM * 2;
  std::vector<Layer> la, lb, lc;  // each variant's states; parameters shared
  for (int l = 0; l < kLayers; ++l) {
    Layer p{floats(hn, g, 0.1f), floats(hn, g, 0.1f), floats(hn, g, 1.f),
            floats(hm2, g, 0.5f), floats(hm2, g, 0.1f), floats(hm2, g, 0.1f), floats(hm2, g, 1.f),
            floats(hn, g, 0.1f), floats(hn, g, 1.f), 0};
    la.push_back(p);
    p.ss = floats(hn, g, 1.f);
    p.x = floats(hm2, g, 1.f);
    lb.push_back(p);
    p.x = floats(hm2, g, 1.f);
    lc.push_back(p);
  }
  const size_t flush_n = (size_t{13} << 20) / sizeof(float) * kLayers;
  float* flush = floats(flush_n, g, 1.f);
  madvise(flush, flush_n * sizeof(float), MADV_HUGEPAGE);
  std::vector<float> u(kH), y(kH), d(kH, 0.5f);
  for (auto& v : u) v = 0.01f * static_cast<float>(g() % 100);
  double sink = 0;
  // One decode step's SSM work over all layers; returns the seconds spent in shift and in diag.
  auto pass = [&](std::vector<Layer>& L, int variant, double* ts, double* td) {
    const bool today = variant > 0;
    *ts = *td = 0;
    for (int l = 0; l < kLayers; ++l) {
      const float* f = flush + static_cast<size_t>(l) * (flush_n / kLayers);
      __m512 acc = _mm512_setzero_ps();
      for (size_t i = 0; i < flush_n / kLayers; i += 16) acc = _mm512_add_ps(acc, _mm512_loadu_ps(f + i));
      sink += _mm512_reduce_add_ps(acc);
      Layer& p = L[l];
      auto t0 = std::chrono::steady_clock::now();
      if (variant == 2) {
        p.pos = (p.pos + kN - 1) % kN;
        std::copy(u.begin(), u.end(), p.ring + static_cast<size_t>(p.pos) * kH);
        shift_ring_step(p.kt, p.ring, p.pos, kH, kN, d.data(), y.data(), 0, kH);
      } else if (today) {
        shift_step_channels(p.sb, p.sc, p.ss, u.data(), d.data(), y.data(), kH, kN);
      } else {
        for (int h = 0; h < kH; ++h) {
          const size_t o = size_t{kN} * h;
          y[h] = shift_call(p.sb + o, p.sc + o, p.ss + o, u[h], kN) + d[h] * u[h];
        }
      }
      *ts += seconds_since(t0);
      sink += y[5];
      t0 = std::chrono::steady_clock::now();
      if (today) {
        s4d_step_channels(p.a, p.b, p.c, p.x, u.data(), d.data(), y.data(), kH, kM);
      } else {
        for (int h = 0; h < kH; ++h) {
          const size_t o = size_t{2 * kM} * h;
          y[h] = s4d_step(p.a + o, p.b + o, p.c + o, p.x + o, u[h], kM) + d[h] * u[h];
        }
      }
      *td += seconds_since(t0);
      sink += y[7];
    }
  };
  std::vector<double> ts[3], td[3], rab, rac, rbc, rd;
  for (int i = 0; i < pairs; ++i) {
    double s3[3], d3[3];
    for (int k = 0; k < 3; ++k) {
      const int v = (i + k) % 3;
      pass(v == 0 ? la : v == 1 ? lb : lc, v, &s3[v], &d3[v]);
    }
    for (int v = 0; v < 3; ++v) ts[v].push_back(s3[v]), td[v].push_back(d3[v]);
    rab.push_back(s3[0] / s3[1]), rac.push_back(s3[0] / s3[2]), rbc.push_back(s3[1] / s3[2]);
    rd.push_back(d3[0] / d3[1]);
  }
  auto med = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  // Bytes per step: parameters read, state read and written (the ring form: kernel and ring
  // read, one input per channel written).
  const double shift_bytes = kLayers * hn * sizeof(float) * 4.0;
  const double ring_bytes = kLayers * (hn * 2.0 + kH) * sizeof(float);
  const double diag_bytes = kLayers * hm2 * sizeof(float) * 5.0;
  std::printf("shift SSM, %.1f MB a step (ring form %.1f MB): A %.3f ms (%.1f GB/s), B %.3f ms "
              "(%.1f GB/s), C %.3f ms (%.1f GB/s); median A/B %.3f, A/C %.3f, B/C %.3f\n",
              shift_bytes / 1e6, ring_bytes / 1e6, med(ts[0]) * 1e3, shift_bytes / med(ts[0]) / 1e9,
              med(ts[1]) * 1e3, shift_bytes / med(ts[1]) / 1e9, med(ts[2]) * 1e3,
              ring_bytes / med(ts[2]) / 1e9, med(rab), med(rac), med(rbc));
  std::printf("diag SSM, %.1f MB a step: A %.3f ms (%.1f GB/s), B %.3f ms (%.1f GB/s), "
              "median A/B %.3f\n",
              diag_bytes / 1e6, med(td[0]) * 1e3, diag_bytes / med(td[0]) / 1e9, med(td[1]) * 1e3,
              diag_bytes / med(td[1]) / 1e9, med(rd));
  if (sink == 1.2345) std::printf("%g\n", sink);  // keeps the work
  return 0;
}
