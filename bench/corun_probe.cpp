// corun_probe [THREADS=2]: does each thread get a core of its own right now?
//
// On a VM the host decides where the vCPUs run, and it changes its mind: on the 2-vCPU Zen 4
// of sessions 10-12 the two vCPUs sometimes shared one core's FMA units (two FMA loops at once
// got 58 GFLOP/s each against 115 alone) and minutes later had a core each (115 each). A -t 2 /
// -t 1 ratio measured in the first state says nothing about the code. scripts/bench_threads.sh
// runs this before and after each -t 2 measurement and keeps the verdict beside it (a hint:
// the host also moves vCPUs during a run).
//
// Prints one line: "corun: single S GFLOP/s; concurrent C1 C2 ... ; ratio R; cores separate|shared"
// with R = the slowest concurrent thread / single (separate: R >= 0.85).
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "core/cpu_peak.h"

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  if (threads < 2 || threads > 1024) {
    std::fprintf(stderr, "usage: corun_probe [THREADS >= 2, default 2]\n");
    return 2;
  }
  const double single = hippo::measure_fma_peak().gflops;
  const std::vector<double> each = hippo::measure_fma_peak_concurrent(threads);
  const double slowest = *std::min_element(each.begin(), each.end());
  const double ratio = slowest / single;
  std::printf("corun: single %.1f GFLOP/s; concurrent", single);
  for (double g : each) std::printf(" %.1f", g);
  std::printf("; ratio %.2f; cores %s\n", ratio, ratio >= 0.85 ? "separate" : "shared");
  return 0;
}
