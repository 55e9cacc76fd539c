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
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "core/cpu_peak.h"

int main(int argc, char** argv) {
  long threads = 2;
  if (argc > 2) threads = -1;
  if (argc == 2) {
    char* end = nullptr;
    errno = 0;
    threads = std::strtol(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || errno != 0) threads = -1;
  }
  if (threads < 2 || threads > 1024) {
    std::fprintf(stderr, "usage: corun_probe [THREADS, 2 to 1024, default 2]%s%s\n",
                 argc > 1 ? "; got " : "", argc > 1 ? argv[1] : "");
    return 2;
  }
  const hippo::FmaCoRun c = hippo::measure_fma_corun(static_cast<int>(threads));
  std::printf("corun: single %.1f GFLOP/s; concurrent", c.single);
  for (double g : c.each) std::printf(" %.1f", g);
  std::printf("; ratio %.2f; cores %s\n", c.ratio, c.separate() ? "separate" : "shared");
  return 0;
}
