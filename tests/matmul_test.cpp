// The typed-weight entry (kernels/matmul.h): for every dtype, x W^T and row gathers equal a
// double-precision loop over the same (widened) weights; row slices are products of their rows.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/matmul.h"

using namespace hippo;

namespace {

struct Weights {
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
  int64_t rows, cols;
  WeightView view(DType t) const {
    return {t, t == DType::F32 ? static_cast<const void*>(f32.data()) : bf16.data(), rows, cols};
  }
  // The value the kernels must use for element i (bf16: the stored rounding, widened).
  double at(DType t, int64_t i) const { return t == DType::F32 ? f32[i] : bf16_to_f32(bf16[i]); }
};

Weights random_weights(int64_t rows, int64_t cols, uint64_t seed) {
  Rng rng(seed);
  Weights w{{}, {}, rows, cols};
  for (int64_t i = 0; i < rows * cols; ++i) w.f32.push_back(static_cast<float>(rng.normal()));
  for (float v : w.f32) w.bf16.push_back(f32_to_bf16(v));
  return w;
}

class MatmulDTypes : public ::testing::TestWithParam<DType> {};

TEST_P(MatmulDTypes, XwtEqualsDoubleLoop) {
  const DType t = GetParam();
  const Weights w = random_weights(37, 53, 1);
  for (int64_t rows : {1, 3, 8, 40}) {
    Rng rng(rows);
    std::vector<float> x(static_cast<size_t>(rows * w.cols));
    for (auto& v : x) v = static_cast<float>(rng.normal());
    for (bool acc : {false, true}) {
      std::vector<float> y(static_cast<size_t>(rows * w.rows), acc ? 0.5f : 123.0f);
      matmul_xwt(x.data(), rows, w.view(t), y.data(), acc);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t o = 0; o < w.rows; ++o) {
          double ref = acc ? 0.5 : 0.0;
          for (int64_t k = 0; k < w.cols; ++k) ref += x[r * w.cols + k] * w.at(t, o * w.cols + k);
          ASSERT_NEAR(y[r * w.rows + o], ref, 1e-4 * (1 + std::abs(ref)))
              << dtype_name(t) << " rows " << rows << " acc " << acc << " at " << r << "," << o;
        }
    }
  }
}

TEST_P(MatmulDTypes, GatherRowsAndSlices) {
  const DType t = GetParam();
  const Weights w = random_weights(11, 24, 2);
  const std::vector<int32_t> ids = {3, 0, 10, 3};
  std::vector<float> y(ids.size() * w.cols);
  gather_rows(ids.data(), static_cast<int64_t>(ids.size()), w.view(t), y.data());
  for (size_t i = 0; i < ids.size(); ++i)
    for (int64_t c = 0; c < w.cols; ++c)
      ASSERT_EQ(y[i * w.cols + c], static_cast<float>(w.at(t, ids[i] * w.cols + c)));
  const int32_t bad = 11;
  EXPECT_THROW(gather_rows(&bad, 1, w.view(t), y.data()), Error);
  // A slice of rows [4, 9) is the product with those rows.
  std::vector<float> x(w.cols, 1.0f), full(w.rows), part(5);
  matmul_xwt(x.data(), 1, w.view(t), full.data());
  matmul_xwt(x.data(), 1, w.view(t).row_slice(4, 5), part.data());
  for (int o = 0; o < 5; ++o) EXPECT_FLOAT_EQ(part[o], full[4 + o]);
}

INSTANTIATE_TEST_SUITE_P(DTypes, MatmulDTypes, ::testing::Values(DType::F32, DType::BF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(Matmul, EmptyViewIsAnError) {
  float x = 1, y = 0;
  EXPECT_THROW(matmul_xwt(&x, 1, WeightView{}, &y), Error);
}

}  // namespace
