#include "core/team.h"

#include <immintrin.h>

#include <thread>

namespace hippo {

// Sense by generation: the last thread to arrive resets the count and starts the next
// generation; the others spin on the generation, pausing, and yield the core after a while
// (on a machine with more runnable threads than cores the thread they wait for may need it).
void TeamSync::barrier() {
  if (failed()) throw TeamAborted{};
  const uint32_t gen = generation_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
    arrived_.store(0, std::memory_order_relaxed);
    generation_.store(gen + 1, std::memory_order_release);
    return;
  }
  for (int spins = 0; generation_.load(std::memory_order_acquire) == gen; ++spins) {
    if (failed()) throw TeamAborted{};
    if (spins < 4000)
      _mm_pause();
    else
      std::this_thread::yield();
  }
}

}  // namespace hippo
