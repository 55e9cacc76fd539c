#include "core/cpu_peak.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include <omp.h>

#include "core/cpu_features.h"

namespace hippo {

namespace {

// 12 independent accumulators hide the FMA latency on every current x86 core. Written out per
// ISA (no shared template with lambdas) so each compiles under its own target attribute,
// also when the project is built without -march=native.
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

__attribute__((target("avx512f,fma"))) double peak_avx512(long iters) {
  __m512 acc[12];
  for (auto& a : acc) a = _mm512_set1_ps(1.0f);
  const __m512 mul = _mm512_set1_ps(0.99999f), add = _mm512_set1_ps(1e-7f);
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < iters; ++i)
#pragma GCC unroll 12
    for (int j = 0; j < 12; ++j) acc[j] = _mm512_fmadd_ps(acc[j], mul, add);
  const double s = seconds_since(t0);
  volatile float sink = 0;
  alignas(64) float lanes[16];
  for (auto& a : acc) {
    _mm512_store_ps(lanes, a);
    sink = sink + lanes[0];
  }
  return 2.0 * 16 * 12 * iters / s / 1e9;
}

__attribute__((target("avx2,fma"))) double peak_avx2(long iters) {
  __m256 acc[12];
  for (auto& a : acc) a = _mm256_set1_ps(1.0f);
  const __m256 mul = _mm256_set1_ps(0.99999f), add = _mm256_set1_ps(1e-7f);
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < iters; ++i)
#pragma GCC unroll 12
    for (int j = 0; j < 12; ++j) acc[j] = _mm256_fmadd_ps(acc[j], mul, add);
  const double s = seconds_since(t0);
  volatile float sink = 0;
  alignas(32) float lanes[8];
  for (auto& a : acc) {
    _mm256_store_ps(lanes, a);
    sink = sink + lanes[0];
  }
  return 2.0 * 8 * 12 * iters / s / 1e9;
}

using PeakFn = double (*)(long);
PeakFn peak_fn(std::string* isa) {
  const CpuFeatures& f = cpu_features_detected();
  if (f.avx512f && f.fma) {
    *isa = "avx512";
    return peak_avx512;
  }
  if (f.avx2 && f.fma) {
    *isa = "avx2";
    return peak_avx2;
  }
  *isa = "scalar";
  return nullptr;
}

}  // namespace

CpuPeak measure_fma_peak() {
  CpuPeak p{0, "scalar"};
  const PeakFn fn = peak_fn(&p.isa);
  if (!fn) {
    p.gflops = 2.0;  // nominal; nothing vectorised to measure
    return p;
  }
  std::vector<double> runs;
  for (int r = 0; r < 5; ++r) runs.push_back(fn(10'000'000));
  std::sort(runs.begin(), runs.end());
  p.gflops = runs[runs.size() / 2];
  return p;
}

FmaCoRun measure_fma_corun(int threads) {
  FmaCoRun c;
  c.single = measure_fma_peak().gflops;
  threads = std::max(threads, 1);
  c.each.assign(static_cast<size_t>(threads), 0.0);
  std::string isa;
  const PeakFn fn = peak_fn(&isa);
  if (!fn) {  // nothing vectorised to measure: nominal, as measure_fma_peak
    std::fill(c.each.begin(), c.each.end(), c.single);
    c.ratio = 1;
    return c;
  }
  std::vector<std::vector<double>> runs(c.each.size());
  for (int r = 0; r < 3; ++r) {
#pragma omp parallel num_threads(threads)
    {
      // Everyone starts together, so the loops overlap in time.
#pragma omp barrier
      const double g = fn(10'000'000);
      runs[static_cast<size_t>(omp_get_thread_num())].push_back(g);
    }
  }
  for (size_t t = 0; t < runs.size(); ++t) {
    auto& v = runs[t];
    if (v.empty()) continue;  // OpenMP gave fewer threads than asked: stays 0
    std::sort(v.begin(), v.end());
    c.each[t] = v[v.size() / 2];
  }
  c.ratio = *std::min_element(c.each.begin(), c.each.end()) / c.single;
  return c;
}

}  // namespace hippo
