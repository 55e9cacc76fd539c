// An optional profiler of the phases of a training step (issue 18, "training with two threads"):
// per phase, wall time, the calling (main) thread's CPU time and the whole process's CPU time.
// With OMP_WAIT_POLICY=passive (threads waiting for work sleep rather than spin), the other
// threads' CPU time is process - main, and a phase's serial time (main thread working while the
// other does not: code outside parallel regions plus imbalance inside them) is about
// main - others. CPU times do not count the time a thread was descheduled, so the estimate
// holds on a loaded machine where wall-clock ratios mean nothing.
//
// Off unless HIPPO_PROFILE is set in the environment (then the trainer prints a table per step
// to stderr). A Scope costs one relaxed load when off. Scopes nest; each phase's times are
// "self" times (its children's are subtracted), so the phases of a step add up to the step.
// Only the thread that opened the first scope since reset() records (outside parallel regions);
// scopes elsewhere do nothing.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

namespace hippo::prof {

bool enabled();
// For tests: turn it on or off regardless of the environment.
void set_enabled(bool on);

struct PhaseTimes {
  std::string name;
  long calls = 0;
  double wall = 0, main_cpu = 0, process_cpu = 0;  // seconds, self (children excluded)
};

class Scope {
 public:
  explicit Scope(const char* name) {
    if (enabled()) open(name);
  }
  ~Scope() {
    if (open_) close();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  void open(const char* name);
  void close();
  bool open_ = false;
};

// The phases recorded since the last reset, in the order first seen.
std::vector<PhaseTimes> phases();
void reset();
// A table of phases() with the serial estimate per phase and the totals; `title` heads it.
void report(std::FILE* out, const std::string& title);

}  // namespace hippo::prof
