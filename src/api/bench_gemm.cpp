// hippo::bench_gemm (include/hippo/bench.hpp): GFLOP/s of our GEMM on the model's own shapes,
// against the measured single-core FMA peak.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "core/cpu_peak.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "core/threads.h"
#include "hippo/bench.hpp"
#include "kernels/gemm.h"

namespace hippo {

void bench_gemm(const BenchGemmOptions& o) {
  HIPPO_CHECK(o.threads >= 1 && o.threads <= 1024, "--threads must be in [1, 1024], got ", o.threads);
  HIPPO_CHECK(o.reps >= 1 && o.reps <= 100000, "--reps must be in [1, 100000], got ", o.reps);
  set_num_threads(o.threads);
  CpuPeak peak = measure_fma_peak();
  std::printf("fp32 FMA peak (%s, measured, 1 core): %.1f GFLOP/s; threads: %d\n", peak.isa.c_str(),
              peak.gflops, o.threads);
  std::printf("%-22s %-8s %10s %10s %8s\n", "shape MxNxK", "op", "median ms", "GFLOP/s", "% peak");
  // (rows = B*L tokens) x (out) x (in): the H3 projections, MLP up and down.
  struct S { int64_t M, N, K; bool ta, tb; const char* op; };
  std::vector<S> shapes = {{4096, 768, 768, false, true, "x W^T"},
                           {4096, 3072, 768, false, true, "x W^T"},
                           {4096, 768, 3072, false, true, "x W^T"},
                           {768, 768, 4096, true, false, "dy^T x"},
                           {4096, 768, 768, false, false, "dy W"}};
  Rng rng(1);
  for (auto& s : shapes) {
    Tensor A = Tensor::zeros({s.M * s.K}), B = Tensor::zeros({s.N * s.K}),
           C = Tensor::zeros({s.M * s.N});
    for (int64_t i = 0; i < A.numel(); ++i) A[i] = static_cast<float>(rng.normal());
    for (int64_t i = 0; i < B.numel(); ++i) B[i] = static_cast<float>(rng.normal());
    int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
    std::vector<double> ms;
    for (int r = 0; r < o.reps + 1; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      gemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), s.N);
      double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (r > 0) ms.push_back(t);  // the first call JIT-compiles oneDNN's kernel
    }
    std::sort(ms.begin(), ms.end());
    double med = ms[ms.size() / 2];
    double gf = 2.0 * s.M * s.N * s.K / (med * 1e-3) / 1e9;
    char shape[64];
    std::snprintf(shape, sizeof shape, "%ldx%ldx%ld", static_cast<long>(s.M),
                  static_cast<long>(s.N), static_cast<long>(s.K));
    std::printf("%-22s %-8s %10.2f %10.1f %7.1f%%\n", shape, s.op, med, gf,
                100.0 * gf / (peak.gflops * o.threads));
  }
}

}  // namespace hippo
