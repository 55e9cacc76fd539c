// A team of threads working through one parallel region together (issue 18: one parallel
// region per decoding step instead of one fork/join per product). Every thread of the team runs
// the same sequence of operations; each takes its share of every operation's outputs by index
// (Team::share), and the threads meet at a barrier only where the next operation reads outputs
// other threads wrote.
//
// The barrier is the team's own rather than `omp barrier` so that an exception in one thread
// (an Error from a kernel) cannot leave the others waiting for ever: the failing thread marks
// the team failed, the waiting ones leave with TeamAborted, and run_team rethrows the first
// error on the calling thread after the region.
#pragma once
#include <atomic>
#include <cstdint>
#include <exception>
#include <utility>

namespace hippo {

// Thrown inside a team's threads when another thread of the team failed; run_team swallows it.
struct TeamAborted {};

// The shared part of a team: the barrier's counters and the failure flag.
class TeamSync {
 public:
  explicit TeamSync(int threads) : n_(threads) {}
  int threads() const { return n_; }
  // Waits until all threads arrived. Throws TeamAborted when another thread failed.
  void barrier();
  // Called by a thread whose work threw: the others leave their barriers.
  void fail() { failed_.store(true, std::memory_order_release); }
  bool failed() const { return failed_.load(std::memory_order_acquire); }

 private:
  const int n_;
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<uint32_t> generation_{0};
  alignas(64) std::atomic<bool> failed_{false};
};

// One thread's view of the team: its index t of n threads.
struct Team {
  int t = 0, n = 1;
  TeamSync* sync = nullptr;  // null for a team of one (barrier is a no-op)

  void barrier() const {
    if (sync) sync->barrier();
  }
  // Thread t's share [begin, end) of `items` outputs: the items split evenly, every boundary a
  // multiple of `align` (except the end, `items`), the same split for the same (items, align)
  // everywhere in a step, so that a thread reads back what it wrote itself without a barrier.
  // Shares of 16 outputs keep the small-rows kernels on their full tiles and the vector loops
  // off their tails.
  std::pair<int64_t, int64_t> share(int64_t items, int64_t align = 16) const {
    return {boundary(items, align, t), boundary(items, align, t + 1)};
  }
  int64_t boundary(int64_t items, int64_t align, int i) const {
    if (i >= n) return items;
    const int64_t even = items * i / n;
    const int64_t b = (even + align / 2) / align * align;
    return b < items ? b : items;
  }
};

// Runs body(team) on `threads` OpenMP threads (fewer if the runtime gives fewer; one: a plain
// call, no region). An exception in any thread ends every thread's body (at its next barrier)
// and the first one is rethrown here.
template <class F>
void run_team(int threads, F&& body);

}  // namespace hippo

#include <omp.h>

namespace hippo {

template <class F>
void run_team(int threads, F&& body) {
  if (threads <= 1) {
    body(Team{});
    return;
  }
  TeamSync sync(threads);
  std::exception_ptr error;
  std::atomic<bool> have_error{false};
#pragma omp parallel num_threads(threads)
  {
    const int got = omp_get_num_threads(), t = omp_get_thread_num();
    // The runtime may give fewer threads (a region nested in another runs on one): then the
    // first thread runs the whole body alone.
    const Team team = got == threads ? Team{t, got, &sync} : Team{};
    if (got == threads || t == 0) {
      try {
        body(team);
      } catch (const TeamAborted&) {
      } catch (...) {
        if (!have_error.exchange(true)) error = std::current_exception();
        sync.fail();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace hippo
