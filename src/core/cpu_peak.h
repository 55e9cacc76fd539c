// Measures the machine's single-core fp32 FMA peak, so benchmarks can report % of peak.
#pragma once
#include <string>
#include <vector>

namespace hippo {

struct CpuPeak {
  double gflops;      // per core, the widest vector FMA available
  std::string isa;    // "avx512", "avx2" or "scalar"
};

// About 0.3 s; median of several runs.
CpuPeak measure_fma_peak();

// The FMA loop of measure_fma_peak on `threads` OpenMP threads at once (about 0.3 s): each
// thread's GFLOP/s, median of 3 runs. Every entry near the single-thread peak means the threads
// have a core each; about peak / threads means they share one core's FMA units (a VM whose
// vCPUs are SMT siblings, or time-shared): scaling measured then says nothing about the code.
std::vector<double> measure_fma_peak_concurrent(int threads);

}  // namespace hippo
