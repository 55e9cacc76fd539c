// Issue 18, training with two threads: the step's formerly serial passes now split over threads
// (gradient check and clipping, element-wise copies and adds) against plain loops, and the
// phase profiler (core/phase_profile.h) that measured them.
#include <gtest/gtest.h>
#include <omp.h>
#include <time.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/phase_profile.h"
#include "core/threads.h"
#include "kernels/parallel_copy.h"
#include "train/grad_clip.h"

using namespace hippo;

namespace {

double thread_cpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Burns `s` seconds of this thread's CPU time (not wall time: the machine may be loaded).
void burn(double s) {
  const double t0 = thread_cpu();
  volatile double x = 0;
  while (thread_cpu() - t0 < s) x = x + 1.0;
}

struct ParamSet {
  std::vector<Param> ps;
  ParamList list;
  explicit ParamSet(std::vector<int64_t> sizes) {
    ps.reserve(sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) {
      ps.push_back(make_param({sizes[i]}, ParamKind::Decay));
      float* g = ps.back().grad.data();
      for (int64_t j = 0; j < sizes[i]; ++j) g[j] = std::sin(0.001f * static_cast<float>(j + i));
    }
    for (size_t i = 0; i < ps.size(); ++i) {
      std::string name = "p";
      name += std::to_string(i);
      list.push_back({name, &ps[i]});
    }
  }
};

}  // namespace

TEST(TrainThreads, NonfiniteGradientFoundAnywhereAtAnyThreadCount) {
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    ParamSet s({1000, 300001, 70000});
    EXPECT_EQ(first_nonfinite_grad(s.list), "");
    const float bad[] = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                         std::numeric_limits<float>::quiet_NaN()};
    for (float v : bad)
      for (int64_t at : {int64_t{0}, int64_t{4095}, int64_t{4096}, int64_t{150000}, int64_t{300000}}) {
        float* g = s.ps[1].grad.data();
        const float keep = g[at];
        g[at] = v;
        EXPECT_EQ(first_nonfinite_grad(s.list), "p1") << v << " at " << at << ", -t " << threads;
        g[at] = keep;
      }
    s.ps[2].grad.data()[69999] = bad[2];
    EXPECT_EQ(first_nonfinite_grad(s.list), "p2");
    s.ps[0].grad.data()[3] = bad[0];
    EXPECT_EQ(first_nonfinite_grad(s.list), "p0");  // the first in order
  }
  set_num_threads(1);
}

TEST(TrainThreads, ClipScalesLikeTheLoop) {
  set_num_threads(2);
  ParamSet s({5000, 200000});
  std::vector<std::vector<float>> before;
  for (auto& p : s.ps) before.emplace_back(p.grad.data(), p.grad.data() + p.grad.numel());
  const double norm = clip_grad_norm(s.list, 1.0);
  ASSERT_GT(norm, 1.0);
  const float scale = static_cast<float>(1.0 / (norm + 1e-6));
  for (size_t i = 0; i < s.ps.size(); ++i)
    for (int64_t j = 0; j < s.ps[i].grad.numel(); ++j)
      ASSERT_EQ(s.ps[i].grad.data()[j], before[i][j] * scale) << i << " " << j;
  set_num_threads(1);
}

TEST(TrainThreads, ElementwisePassesMatchLoops) {
  set_num_threads(2);
  const int64_t n = 100003;  // above the parallel threshold, not a multiple of anything
  std::vector<float> x(n), y(n), ref(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::cos(0.01f * i);
    y[i] = std::sin(0.02f * i);
  }
  for (int64_t i = 0; i < n; ++i) ref[i] = y[i] + x[i];
  parallel_add(y.data(), x.data(), n);
  EXPECT_EQ(y, ref);
  for (int64_t i = 0; i < n; ++i) ref[i] = y[i] * 0.37f;
  parallel_scale(y.data(), 0.37f, n);
  EXPECT_EQ(y, ref);
  parallel_copy(y.data(), x.data(), n);
  EXPECT_EQ(y, x);
  parallel_fill(y.data(), 0.0f, n);
  EXPECT_EQ(y, std::vector<float>(n, 0.0f));
  parallel_fill(y.data(), -0.0f, n);
  EXPECT_TRUE(std::signbit(y[n - 1]) && std::signbit(y[0]));
  parallel_fill(y.data(), 2.5f, n);
  EXPECT_EQ(y, std::vector<float>(n, 2.5f));
  set_num_threads(1);
}

// Self times of nested scopes, and the other thread's CPU time inside a parallel region.
TEST(TrainThreads, PhaseProfileSelfTimesAndOtherThreads) {
  prof::set_enabled(true);
  prof::reset();
  {
    prof::Scope outer("outer");
    burn(0.03);
    {
      prof::Scope inner("inner");
      burn(0.02);
    }
    {
      prof::Scope par("parallel");
#pragma omp parallel num_threads(2)
      {
        prof::Scope ignored("inside a region");  // not recorded
        burn(0.02);
      }
    }
  }
  prof::set_enabled(false);
  const auto ph = prof::phases();
  prof::reset();
  ASSERT_EQ(ph.size(), 3u);
  EXPECT_EQ(ph[0].name, "outer");
  EXPECT_EQ(ph[1].name, "inner");
  EXPECT_EQ(ph[2].name, "parallel");
  for (const auto& p : ph) EXPECT_EQ(p.calls, 1);
  // CPU times: at least what was burnt, less than twice that (the children are subtracted).
  EXPECT_GE(ph[0].main_cpu, 0.03);
  EXPECT_LT(ph[0].main_cpu, 0.045);
  EXPECT_GE(ph[1].main_cpu, 0.02);
  EXPECT_LT(ph[1].main_cpu, 0.035);
  EXPECT_GE(ph[2].main_cpu, 0.02);
  EXPECT_GE(ph[2].process_cpu - ph[2].main_cpu, 0.019);  // the region's second thread
  EXPECT_LT(ph[0].process_cpu - ph[0].main_cpu, 0.01);  // nothing else ran in outer's own time
}
