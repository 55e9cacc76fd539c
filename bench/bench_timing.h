// Timing shared by the benchmarks: process CPU time and medians.
//
// On this shared machine the CPU time is the steadier measure for one thread: it leaves out
// the time other jobs hold the core (not their cache and memory-bandwidth pressure).
#pragma once
#include <time.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace hippo::bench {

// CPU time of the whole process (all threads), in ms.
inline double cpu_now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

// The middle value (the upper of the two middle ones for an even count); v not empty.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Timing {
  double wall_ms, cpu_ms;
};

// Medians over `reps` calls of f, after one untimed warm-up call (first touch of outputs and
// scratch, plans).
template <class F>
Timing median_timing(F&& f, int reps) {
  f();
  std::vector<double> wall, cpu;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_now_ms();
    f();
    cpu.push_back(cpu_now_ms() - c0);
    wall.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  return {wall[wall.size() / 2], cpu[cpu.size() / 2]};
}

}  // namespace hippo::bench
