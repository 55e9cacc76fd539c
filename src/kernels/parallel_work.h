// Below this many elements of work a loop runs on one thread: an OpenMP fork/join costs
// microseconds (much more on a loaded machine), more than small loops take serially.
#pragma once
#include <omp.h>

#include <cstdint>

namespace hippo {

inline constexpr int64_t kMinParallelWork = int64_t{1} << 15;

inline bool worth_parallel(int64_t work) { return work >= kMinParallelWork; }

// Optimizer passes over one parameter tensor (AdamW, the gradient norm): a few flops per
// element, so they pay for a fork/join only from twice the general threshold.
inline constexpr int64_t kMinParallelOptimizerWork = int64_t{1} << 16;

inline bool worth_parallel_optimizer(int64_t n) { return n > kMinParallelOptimizerWork; }

// Per-token (decoding) work is split over threads only above this many elements, about
// 0.2-0.5 ms of work: on a shared 2-core machine the second thread of a fork/join is often
// not running, and waiting for it cost more than smaller steps take on one thread.
inline constexpr int64_t kMinParallelStepWork = int64_t{1} << 19;

inline bool worth_parallel_step(int64_t work) { return work >= kMinParallelStepWork; }

// Calls fn(begin, end) on [0, n): split evenly over the OpenMP threads when `parallel`, else
// once on the calling thread. A plain call rather than `omp parallel ... if (false)`, whose
// serial case GCC 12 compiled without vectorising the loop inside (see kernels/gelu.cpp).
template <class F>
void parallel_range(int64_t n, bool parallel, F&& fn) {
  if (!parallel || n <= 1 || omp_get_max_threads() == 1) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) fn(b, e);
  }
}

}  // namespace hippo
