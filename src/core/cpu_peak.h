// Measures the machine's single-core fp32 FMA peak, so benchmarks can report % of peak.
#pragma once
#include <string>

namespace hippo {

struct CpuPeak {
  double gflops;      // per core, the widest vector FMA available
  std::string isa;    // "avx512", "avx2" or "scalar"
};

// About 0.3 s; median of several runs.
CpuPeak measure_fma_peak();

}  // namespace hippo
