// The FMA co-run check (core/cpu_peak.h) that benchmarks print before a thread-scaling run:
// one entry per thread, each a real measurement, and the verdict derived from the slowest.
// (Speeds themselves depend on the machine and are not asserted.)
#include <gtest/gtest.h>

#include <algorithm>

#include "core/cpu_peak.h"

using namespace hippo;

TEST(CpuPeak, CoRunGivesEveryThreadAndTheSlowestOverSingle) {
  const FmaCoRun c = measure_fma_corun(2);
  ASSERT_EQ(c.each.size(), 2u);
  EXPECT_GT(c.single, 0.0);
  for (double g : c.each) EXPECT_GT(g, 0.0) << "a thread that never ran reads 0";
  EXPECT_DOUBLE_EQ(c.ratio, *std::min_element(c.each.begin(), c.each.end()) / c.single);
  EXPECT_EQ(c.separate(), c.ratio >= 0.85);
}

TEST(CpuPeak, CoRunOfOneThreadIsOneEntry) {
  const FmaCoRun c = measure_fma_corun(0);  // below 1: one thread
  EXPECT_EQ(c.each.size(), 1u);
}
