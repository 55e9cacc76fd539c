// The H3 decode step runs its SSMs over runs of channels (H3::shift_rows, H3::heads,
// shift_step_channels, S4DStepParams::step_channels). With enough sequences the step splits
// its rows and heads over two threads at arbitrary points, mid-sequence included; every
// sequence must still get what it gets when stepped alone.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "core/rng.h"
#include "nn/h3.h"

using namespace hippo;

namespace {

struct Layout {
  int head_dim;
  bool use_shift;
};

// 257 sequences of d 64, N 64: rows * N and rows * (M + 1) pass the step's parallel threshold
// (kernels/parallel_work.h), and half of 257 sequences ends mid-sequence.
TEST(H3StepRuns, ManySequencesOnTwoThreadsEqualEachSteppedAlone) {
  const int d = 64, N = 64, B = 257, T = 3;
  const int saved = omp_get_max_threads();
  for (const Layout lay : {Layout{1, true}, Layout{2, true}, Layout{1, false}}) {
    H3 h3(d, N, lay.head_dim, lay.use_shift);
    Rng rng(7);
    h3.init(rng, 2);
    std::vector<float> x(static_cast<size_t>(T) * B * d);
    for (auto& v : x) v = static_cast<float>(rng.normal());

    omp_set_num_threads(2);
    auto all = h3.new_state(B);
    std::vector<float> y_all(static_cast<size_t>(T) * B * d);
    for (int t = 0; t < T; ++t)
      h3.step(x.data() + static_cast<size_t>(t) * B * d, y_all.data() + static_cast<size_t>(t) * B * d,
              *all);
    omp_set_num_threads(1);

    double err = 0, scale = 0;
    for (int b : {0, 1, 127, 128, 129, 200, 256}) {  // 128: the sequence the split falls in
      auto one = h3.new_state(1);
      std::vector<float> y(static_cast<size_t>(d));
      for (int t = 0; t < T; ++t) {
        h3.step(x.data() + (static_cast<size_t>(t) * B + b) * d, y.data(), *one);
        const float* want = y_all.data() + (static_cast<size_t>(t) * B + b) * d;
        for (int c = 0; c < d; ++c) {
          err = std::max(err, static_cast<double>(std::fabs(y[c] - want[c])));
          scale = std::max(scale, static_cast<double>(std::fabs(y[c])));
        }
      }
    }
    EXPECT_GT(scale, 1e-4) << "head_dim " << lay.head_dim;  // the outputs are not all zero
    EXPECT_LE(err, 1e-5 * scale) << "head_dim " << lay.head_dim << " shift " << lay.use_shift;
  }
  omp_set_num_threads(saved);
}

}  // namespace
