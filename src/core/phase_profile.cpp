#include "core/phase_profile.h"

#include <omp.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

namespace hippo::prof {

namespace {

std::atomic<bool> g_on{std::getenv("HIPPO_PROFILE") != nullptr};

double now(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Frame {
  size_t phase;
  double wall0, main0, proc0;
  double child_wall = 0, child_main = 0, child_proc = 0;
};

std::vector<PhaseTimes> g_phases;
std::vector<Frame> g_stack;
// The thread that opened the first scope; scopes opened by any other thread are ignored.
std::thread::id g_owner;

size_t phase_index(const char* name) {
  for (size_t i = 0; i < g_phases.size(); ++i)
    if (g_phases[i].name == name) return i;
  g_phases.push_back(PhaseTimes{name});
  return g_phases.size() - 1;
}

}  // namespace

bool enabled() { return g_on.load(std::memory_order_relaxed); }
void set_enabled(bool on) { g_on.store(on, std::memory_order_relaxed); }

void Scope::open(const char* name) {
  if (g_stack.empty() && g_phases.empty()) g_owner = std::this_thread::get_id();
  if (std::this_thread::get_id() != g_owner || omp_in_parallel()) return;
  open_ = true;
  g_stack.push_back(Frame{phase_index(name), now(CLOCK_MONOTONIC), now(CLOCK_THREAD_CPUTIME_ID),
                          now(CLOCK_PROCESS_CPUTIME_ID)});
}

void Scope::close() {
  const double proc = now(CLOCK_PROCESS_CPUTIME_ID), main = now(CLOCK_THREAD_CPUTIME_ID),
               wall = now(CLOCK_MONOTONIC);
  const Frame f = g_stack.back();
  g_stack.pop_back();
  const double dw = wall - f.wall0, dm = main - f.main0, dp = proc - f.proc0;
  PhaseTimes& p = g_phases[f.phase];
  ++p.calls;
  p.wall += dw - f.child_wall;
  p.main_cpu += dm - f.child_main;
  p.process_cpu += dp - f.child_proc;
  if (!g_stack.empty()) {
    Frame& parent = g_stack.back();
    parent.child_wall += dw;
    parent.child_main += dm;
    parent.child_proc += dp;
  }
}

std::vector<PhaseTimes> phases() { return g_phases; }

void reset() { g_phases.clear(); }

void report(std::FILE* out, const std::string& title) {
  const int n = std::max(1, omp_get_max_threads());
  std::fprintf(out, "# %s (%d threads; ms; serial = main - others/(n-1), busy = max(main, others/(n-1)))\n",
               title.c_str(), n);
  std::fprintf(out, "%-24s %6s %9s %9s %9s %9s %9s\n", "phase", "calls", "wall", "main_cpu",
               "other_cpu", "serial", "busy");
  double tw = 0, tm = 0, to = 0, ts = 0, tb = 0;
  for (const PhaseTimes& p : g_phases) {
    const double other = p.process_cpu - p.main_cpu;
    const double per_other = n > 1 ? other / (n - 1) : 0;
    const double serial = n > 1 ? std::max(0.0, p.main_cpu - per_other) : p.main_cpu;
    const double busy = std::max(p.main_cpu, per_other);
    std::fprintf(out, "%-24s %6ld %9.1f %9.1f %9.1f %9.1f %9.1f\n", p.name.c_str(), p.calls,
                 1e3 * p.wall, 1e3 * p.main_cpu, 1e3 * other, 1e3 * serial, 1e3 * busy);
    tw += p.wall;
    tm += p.main_cpu;
    to += other;
    ts += serial;
    tb += busy;
  }
  const double work = tm + to;
  std::fprintf(out, "%-24s %6s %9.1f %9.1f %9.1f %9.1f %9.1f\n", "total", "", 1e3 * tw, 1e3 * tm,
               1e3 * to, 1e3 * ts, 1e3 * tb);
  std::fprintf(out, "# work (cpu) %.1f ms; serial fraction s = serial/work = %.3f; projected "
               "speedup over this work on one thread = work/busy = %.2f\n",
               1e3 * work, work > 0 ? ts / work : 0.0, tb > 0 ? work / tb : 0.0);
}

}  // namespace hippo::prof
