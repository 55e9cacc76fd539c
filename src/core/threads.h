// Thread control: the one thread-count setting. All parallel work uses OpenMP (oneDNN's GEMM
// follows the same setting); a loop runs on several threads only above the work thresholds of
// kernels/parallel_work.h (worth_parallel, worth_parallel_step, parallel_range). Per-thread
// kernel scratch is owned by core/scratch.h (release_thread_scratch gives it back).
#pragma once

namespace hippo {

// n <= 0 means all hardware threads. Process-wide: every thread that enters the library through
// the API (Session, step_batch, forward_logits, ops) runs with it, whichever thread set it.
void set_num_threads(int n);
int num_threads();
// Makes the calling thread's OpenMP setting the process-wide one (API entry points call it;
// a no-op until set_num_threads was called).
void apply_num_threads();

}  // namespace hippo
