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

// The FMA loop of measure_fma_peak alone, then on `threads` OpenMP threads at once (about
// 0.6 s; each thread's GFLOP/s, median of 3 runs). Every thread near the single-thread peak
// means the threads have a core each; about peak / threads means they share one core's FMA
// units (a VM whose vCPUs are placed so, or time-shared): scaling measured then says nothing
// about the code. bench/corun_probe and `hippo bench generate -t N` print it.
struct FmaCoRun {
  double single = 0;          // GFLOP/s alone
  std::vector<double> each;   // GFLOP/s of each thread at once (0: OpenMP never ran it)
  double ratio = 0;           // the slowest thread / single
  bool separate() const { return ratio >= 0.85; }
};
FmaCoRun measure_fma_corun(int threads);

}  // namespace hippo
