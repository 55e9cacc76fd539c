#include "core/cpu_peak.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace hippo {

namespace {

// 12 independent accumulators hide the FMA latency on every current x86 core.
template <typename V, typename Fma>
double run_chains(long iters, V init, V mul, V add, Fma fma, int lanes) {
  V acc[12];
  for (auto& a : acc) a = init;
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < iters; ++i)
#pragma GCC unroll 12
    for (int j = 0; j < 12; ++j) acc[j] = fma(acc[j], mul, add);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  volatile float sink = 0;
  for (auto& a : acc) sink = sink + reinterpret_cast<float*>(&a)[0];
  return 2.0 * lanes * 12 * iters / s / 1e9;
}

__attribute__((target("avx512f,fma"))) double peak_avx512(long iters) {
  return run_chains(iters, _mm512_set1_ps(1.0f), _mm512_set1_ps(0.99999f), _mm512_set1_ps(1e-7f),
                    [](__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }, 16);
}

__attribute__((target("avx2,fma"))) double peak_avx2(long iters) {
  return run_chains(iters, _mm256_set1_ps(1.0f), _mm256_set1_ps(0.99999f), _mm256_set1_ps(1e-7f),
                    [](__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }, 8);
}

}  // namespace

CpuPeak measure_fma_peak() {
  CpuPeak p{0, "scalar"};
  double (*fn)(long) = nullptr;
  if (__builtin_cpu_supports("avx512f")) {
    fn = peak_avx512;
    p.isa = "avx512";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    fn = peak_avx2;
    p.isa = "avx2";
  }
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

}  // namespace hippo
