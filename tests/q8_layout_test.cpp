// The Rows4 byte layout of q8 weights (core/weight.h Q8Layout, kernels/q8_layout.h): positions
// worked out by hand from the layout's description, a bijection on every shape, round trips,
// and every kernel giving the same bits on Rows4 as on the row-major original, at every level
// and for every split of the outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <iterator>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/gemm_q8.h"
#include "kernels/matmul.h"
#include "kernels/q8_layout.h"

using namespace hippo;

namespace {

struct Q8Pair {  // one quantized matrix in both layouts, Rows4 with fp32 and with bf16 scales
  int64_t rows, cols;
  std::vector<int8_t> q, q4;
  std::vector<float> s, s4;
  std::vector<uint16_t> s16;
  WeightView rows_view() const { return {DType::Q8, q.data(), rows, cols, s.data()}; }
  WeightView rows4_view() const {
    return {DType::Q8, q4.data(), rows, cols, s4.data(), Q8Layout::Rows4};
  }
  WeightView rows4_bf16_view() const {
    WeightView v{DType::Q8, q4.data(), rows, cols, nullptr, Q8Layout::Rows4};
    v.scales_bf16 = s16.data();
    return v;
  }
  std::vector<WeightView> rows4_views() const { return {rows4_view(), rows4_bf16_view()}; }
};

Q8Pair make_pair(int64_t rows, int64_t cols, uint64_t seed) {
  Q8Pair p{rows, cols, {}, {}, {}, {}, {}};
  Rng rng(seed);
  std::vector<float> f(static_cast<size_t>(rows * cols));
  for (auto& v : f) v = 0.05f * static_cast<float>(rng.normal());
  p.q.resize(f.size());
  p.q4.resize(f.size());
  p.s.resize(f.size() / kQ8Block);
  p.s4.resize(f.size() / kQ8Block);
  p.s16.resize(f.size() / kQ8Block);
  quantize_q8_weights(f.data(), rows, cols, p.q.data(), p.s.data());
  q8_relayout(p.q.data(), p.s.data(), rows, cols, Q8Layout::Rows4, p.q4.data(), p.s4.data());
  std::vector<int8_t> q4b(f.size());
  const WeightView b = q8_relayout(p.q.data(), p.s.data(), rows, cols, Q8Layout::Rows4,
                                   q4b.data(), nullptr, p.s16.data());
  EXPECT_TRUE(b.scales_bf16 == p.s16.data() && b.scales == nullptr);
  EXPECT_EQ(q4b, p.q4);  // the values are placed alike
  return p;
}

WeightView shape_only(int64_t rows, int64_t cols) {
  return {DType::Q8, nullptr, rows, cols, nullptr, Q8Layout::Rows4};
}

const int64_t kShapes[][2] = {{1, 32}, {3, 64}, {4, 96}, {5, 96},  {9, 288},
                              {8, 480}, {37, 768}, {6, 800}, {13, 3072}};

}  // namespace

// From the description in core/weight.h, by hand.
TEST(Q8Layout, PositionsByHand) {
  // (5, 96): one full chunk and a half chunk per row; 3 blocks (no full quad); row 4 is the tail.
  const WeightView a = shape_only(5, 96);
  EXPECT_EQ(q8_value_offset(a, 2, 10), 2 * 64 + 10);
  EXPECT_EQ(q8_value_offset(a, 1, 70), 256 + 32 + 6);       // half chunk of row 1
  EXPECT_EQ(q8_value_offset(a, 3, 95), 256 + 3 * 32 + 31);
  EXPECT_EQ(q8_value_offset(a, 4, 5), 4 * 96 + 5);          // row-major tail
  EXPECT_EQ(q8_scale_offset(a, 1, 2), 1 * 3 + 2);           // partial quad of 3: j * 3 + b
  EXPECT_EQ(q8_scale_offset(a, 3, 0), 9);
  EXPECT_EQ(q8_scale_offset(a, 4, 1), 4 * 3 + 1);
  // (8, 768): 12 chunks, 24 blocks = 3 full quads; row 5 is j = 1 of group 1.
  const WeightView b = shape_only(8, 768);
  EXPECT_EQ(q8_value_offset(b, 3, 700), 10 * 256 + 3 * 64 + 60);
  EXPECT_EQ(q8_value_offset(b, 5, 0), 4 * 768 + 64);
  EXPECT_EQ(q8_scale_offset(b, 2, 9), 32 + 2 * 8 + 1);
  EXPECT_EQ(q8_scale_offset(b, 5, 23), 4 * 24 + 2 * 32 + 8 + 7);
  // The Rows layout is plain row-major.
  const WeightView r{DType::Q8, nullptr, 8, 768, nullptr, Q8Layout::Rows};
  EXPECT_EQ(q8_value_offset(r, 3, 700), 3 * 768 + 700);
  EXPECT_EQ(q8_scale_offset(r, 5, 23), 5 * 24 + 23);
}

TEST(Q8Layout, EveryShapeIsABijection) {
  for (auto& sh : kShapes) {
    const WeightView w = shape_only(sh[0], sh[1]);
    const int64_t nb = sh[1] / kQ8Block;
    std::vector<int> seen(static_cast<size_t>(sh[0] * sh[1])), seen_s(static_cast<size_t>(sh[0] * nb));
    for (int64_t r = 0; r < sh[0]; ++r) {
      for (int64_t c = 0; c < sh[1]; ++c) ++seen.at(static_cast<size_t>(q8_value_offset(w, r, c)));
      for (int64_t b = 0; b < nb; ++b) ++seen_s.at(static_cast<size_t>(q8_scale_offset(w, r, b)));
    }
    for (int v : seen) ASSERT_EQ(v, 1) << sh[0] << "x" << sh[1];
    for (int v : seen_s) ASSERT_EQ(v, 1) << sh[0] << "x" << sh[1];
  }
}

TEST(Q8Layout, RoundTripsAndDequantizesAlike) {
  for (auto& sh : kShapes) {
    const Q8Pair p = make_pair(sh[0], sh[1], 5);
    std::vector<int8_t> q(p.q.size());
    std::vector<float> s(p.s.size());
    for (int64_t r0 : {int64_t{0}, sh[0] / 2})
    for (const WeightView& v4 : p.rows4_views()) {
      const int64_t n = sh[0] - r0;
      q8_copy_rows(v4, r0, n, q.data(), s.data());
      for (int64_t i = 0; i < n * sh[1]; ++i) ASSERT_EQ(q[i], p.q[r0 * sh[1] + i]) << i;
      for (int64_t i = 0; i < n * sh[1] / kQ8Block; ++i)
        ASSERT_EQ(s[i], p.s[r0 * sh[1] / kQ8Block + i]) << i;
      std::vector<float> a(static_cast<size_t>(n * sh[1])), b(a.size());
      dequantize_q8_rows(p.rows_view(), r0, n, a.data());
      dequantize_q8_rows(v4, r0, n, b.data());
      for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << sh[0] << "x" << sh[1] << " " << i;
    }
  }
}

// Rows4 gives the row-major result bit for bit, at every level, for every split of the outputs
// (a split inside a group makes the AVX512-VNNI kernel take lone rows there).
TEST(Q8Layout, DotRowsGiveTheRowMajorBitsAtEveryLevelAndSplit) {
  std::vector<Isa> levels;
  for (Isa l : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16})
    if (isa_enabled(l)) levels.push_back(l);
  for (auto& sh : kShapes) {
    const Q8Pair p = make_pair(sh[0], sh[1], 7);
    for (const WeightView& v4 : p.rows4_views())
    for (int64_t rows : {1, 3}) {
      Rng rng(9);
      std::vector<float> x(static_cast<size_t>(rows * sh[1]));
      for (auto& v : x) v = static_cast<float>(rng.normal());
      std::vector<int8_t> xq(x.size());
      std::vector<float> xs(x.size() / kQ8Block);
      quantize_q8(x.data(), rows, sh[1], xq.data(), xs.data());
      std::vector<double> ref(static_cast<size_t>(rows * sh[0]));
      q8_dot_ref(xq.data(), xs.data(), rows, v4, ref.data());
      for (Isa level : levels) {
        const int64_t out = sh[0];
        std::vector<float> want(static_cast<size_t>(rows * out)), got(want.size(), -1.0f);
        q8_dot_rows(xq.data(), xs.data(), rows, p.rows_view(), want.data(), out, 0, out, false,
                    level);
        for (int64_t cut = 0; cut <= out; ++cut) {  // [0, cut) and [cut, out), then whole
          q8_dot_rows(xq.data(), xs.data(), rows, v4, got.data(), out, 0, cut, false, level);
          q8_dot_rows(xq.data(), xs.data(), rows, v4, got.data(), out, cut, out, false, level);
          for (size_t i = 0; i < want.size(); ++i)
            ASSERT_EQ(got[i], want[i]) << isa_name(level) << " " << sh[0] << "x" << sh[1]
                                       << (v4.scales_bf16 ? " bf16 scales" : " fp32 scales")
                                       << " cut " << cut << " at " << i;
        }
        for (size_t i = 0; i < want.size(); ++i)  // and the double loop reads Rows4 alike
          ASSERT_NEAR(want[i], ref[i], 2e-6 * (1 + std::fabs(ref[i]))) << i;
      }
    }
  }
}

// The typed entry (decode rows and the prompt path) on a Rows4 view.
TEST(Q8Layout, MatmulBothPathsGiveTheRowMajorBits) {
  const Q8Pair p = make_pair(37, 288, 3);
  for (int64_t rows : {2, 40}) {
    Rng rng(4);
    std::vector<float> x(static_cast<size_t>(rows * 288));
    for (auto& v : x) v = static_cast<float>(rng.normal());
    std::vector<float> a(static_cast<size_t>(rows * 37)), b(a.size());
    matmul_xwt(x.data(), rows, p.rows_view(), a.data());
    for (const WeightView& v4 : p.rows4_views()) {
      matmul_xwt(x.data(), rows, v4, b.data());
      for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << rows << " " << i;
    }
  }
}

TEST(Q8Layout, RowSlicesOnGroupEdgesOnly) {
  const WeightView w = shape_only(10, 64);  // groups [0, 4), [4, 8); tail 8, 9
  EXPECT_TRUE(q8_row_slice_ok(w, 0, 4));
  EXPECT_TRUE(q8_row_slice_ok(w, 4, 6));
  EXPECT_TRUE(q8_row_slice_ok(w, 8, 1));
  EXPECT_FALSE(q8_row_slice_ok(w, 2, 4));
  EXPECT_FALSE(q8_row_slice_ok(w, 0, 3));
  EXPECT_TRUE(q8_row_slice_ok(w.with_layout(Q8Layout::Rows), 2, 3));
}

// bf16 scales only where storing them as bf16 changes nothing, and only in Rows4.
TEST(Q8Layout, Bf16ScalesOnlyFromBf16Values) {
  Rng rng(11);
  std::vector<float> f(8 * 64);
  for (auto& v : f) v = static_cast<float>(rng.normal());
  std::vector<int8_t> q(f.size()), q4(f.size());
  std::vector<float> s(f.size() / kQ8Block);
  std::vector<uint16_t> s16(s.size());
  quantize_q8_weights(f.data(), 8, 64, q.data(), s.data());
  EXPECT_TRUE(q8_scales_are_bf16(s.data(), static_cast<int64_t>(s.size())));
  EXPECT_THROW(q8_relayout(q.data(), s.data(), 8, 64, Q8Layout::Rows, q4.data(), nullptr,
                           s16.data()),
               Error);
  quantize_q8(f.data(), 8, 64, q.data(), s.data());  // activations' scales: amax / 127
  EXPECT_FALSE(q8_scales_are_bf16(s.data(), static_cast<int64_t>(s.size())));
  EXPECT_THROW(q8_relayout(q.data(), s.data(), 8, 64, Q8Layout::Rows4, q4.data(), nullptr,
                           s16.data()),
               Error);
}
