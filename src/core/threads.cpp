#include "core/threads.h"

#include <omp.h>

#include <atomic>

namespace hippo {

namespace {
// OpenMP's thread count is a per-thread setting (omp_set_num_threads changes only the caller's),
// and threads started later begin from the OMP_NUM_THREADS default. The process-wide value lives
// here; apply_num_threads() copies it into the calling thread.
std::atomic<int> g_threads{0};  // 0: never set (OpenMP's default)
}  // namespace

void set_num_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  g_threads.store(n, std::memory_order_relaxed);
  omp_set_num_threads(n);
}

int num_threads() {
  const int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
}

void apply_num_threads() {
  const int n = g_threads.load(std::memory_order_relaxed);
  if (n > 0 && omp_get_max_threads() != n) omp_set_num_threads(n);
}

}  // namespace hippo
