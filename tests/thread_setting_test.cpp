// set_num_threads is process-wide: OpenMP keeps the count per thread, so a thread started
// after the call (a server's scheduler, a Python thread) would otherwise run with OpenMP's
// default. Entering the library through the API makes the calling thread use the setting.
#include <gtest/gtest.h>
#include <omp.h>

#include <thread>
#include <vector>

#include "hippo/hippo.hpp"
#include "hippo/ops.hpp"

TEST(ThreadSetting, AppliesToThreadsStartedLater) {
  const int before = hippo::num_threads();
  const int want = omp_get_num_procs() + 1;  // differs from any thread's OpenMP default
  hippo::set_num_threads(want);
  EXPECT_EQ(hippo::num_threads(), want);
  int seen_before_call = 0, seen_after_call = 0, inside_region = 0;
  std::thread t([&] {
    seen_before_call = omp_get_max_threads();
    const int B = 1, H = 2, L = 8;
    std::vector<float> u(B * H * L, 1.0f), k(H * L, 0.5f), D(H, 1.0f), y(B * H * L);
    hippo::ops::fftconv_forward(u.data(), k.data(), D.data(), y.data(), B, H, L);
    seen_after_call = omp_get_max_threads();
#pragma omp parallel
#pragma omp single
    inside_region = omp_get_num_threads();
  });
  t.join();
  EXPECT_NE(seen_before_call, want) << "a new thread starts from OpenMP's default";
  EXPECT_EQ(seen_after_call, want);
  EXPECT_EQ(inside_region, want);
  hippo::set_num_threads(before);
}
