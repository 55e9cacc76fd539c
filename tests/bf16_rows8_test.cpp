// The Rows8 order of bf16 weights (core/weight.h Bf16Layout): positions worked out by hand from
// the layout's description, a bijection on every shape, and every bf16 path (small-rows kernels
// at each level and each split of the outputs, the prompt path, the reference, the embedding
// lookup, whole models decoding and prefilling) giving the same bits on Rows8 as on the
// row-major original.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "core/rng.h"
#include "generate/state_io.h"
#include "kernels/embedding.h"
#include "kernels/gemm_bf16.h"
#include "kernels/gemm_small.h"
#include "kernels/matmul.h"
#include "models/bf16_weights.h"
#include "models/lm.h"

using namespace hippo;

namespace {

// Rows8 written from the description, independently of bf16_offset: group g's chunk c of its
// row j at g * 8 * cols + c * 256 + j * 32; rows past the last whole group row-major.
std::vector<uint16_t> to_rows8(const std::vector<uint16_t>& w, int64_t rows, int64_t cols) {
  std::vector<uint16_t> out(w.size());
  const int64_t groups = rows / 8;
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t c = 0; c < cols / 32; ++c)
      for (int64_t j = 0; j < 8; ++j)
        for (int64_t e = 0; e < 32; ++e)
          out[g * 8 * cols + c * 256 + j * 32 + e] = w[(g * 8 + j) * cols + c * 32 + e];
  for (int64_t i = groups * 8 * cols; i < rows * cols; ++i) out[i] = w[i];
  return out;
}

struct Bf16Pair {  // one matrix in both orders
  int64_t rows, cols;
  std::vector<uint16_t> w, w8;
  Bf16Data rows_data() const { return {w.data(), 0}; }
  Bf16Data rows8_data() const { return {w8.data(), rows / 8 * 8}; }
  WeightView rows_view() const { return {DType::BF16, w.data(), rows, cols}; }
  WeightView rows8_view() const {
    WeightView v{DType::BF16, w8.data(), rows, cols};
    v.bf16_layout = Bf16Layout::Rows8;
    return v;
  }
};

Bf16Pair make_pair(int64_t rows, int64_t cols, uint64_t seed) {
  Bf16Pair p{rows, cols, std::vector<uint16_t>(static_cast<size_t>(rows * cols)), {}};
  Rng rng(seed);
  for (auto& v : p.w) v = f32_to_bf16(0.1f * static_cast<float>(rng.normal()));
  p.w8 = to_rows8(p.w, rows, cols);
  return p;
}

std::vector<float> random_x(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = static_cast<float>(rng.normal());
  return x;
}

void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(std::memcmp(&a[i], &b[i], sizeof(float)), 0) << what << " at " << i << ": " << a[i]
                                                           << " vs " << b[i];
}

// (rows, cols): a single group, groups with a tail, tails shorter than a tile, the 125M shapes.
const int64_t kShapes[][2] = {{8, 32}, {13, 64}, {24, 96}, {61, 768}, {100, 160}, {768, 768}};

}  // namespace

TEST(Bf16Rows8, PositionsByHand) {
  // (13, 64): one group (rows 0-7, two chunks each), rows 8-12 row-major.
  EXPECT_EQ(bf16_offset(0, 0, 64, 8), 0);
  EXPECT_EQ(bf16_offset(1, 0, 64, 8), 32);
  EXPECT_EQ(bf16_offset(7, 31, 64, 8), 7 * 32 + 31);
  EXPECT_EQ(bf16_offset(0, 32, 64, 8), 256);
  EXPECT_EQ(bf16_offset(5, 40, 64, 8), 256 + 5 * 32 + 8);
  EXPECT_EQ(bf16_offset(8, 3, 64, 8), 8 * 64 + 3);  // the row-major tail
  // (16, 768): row 9 is j = 1 of group 1.
  EXPECT_EQ(bf16_offset(9, 700, 768, 16), 8 * 768 + 21 * 256 + 32 + 28);
  // rows8 0 is plain row-major.
  EXPECT_EQ(bf16_offset(5, 40, 64, 0), 5 * 64 + 40);
  WeightView v{DType::BF16, nullptr, 13, 64};
  EXPECT_EQ(bf16_data(v).rows8, 0);
  v.bf16_layout = Bf16Layout::Rows8;
  EXPECT_EQ(bf16_data(v).rows8, 8);
}

TEST(Bf16Rows8, EveryShapeIsABijectionAndMatchesTheDescription) {
  for (auto& sh : kShapes) {
    const int64_t rows = sh[0], cols = sh[1], r8 = rows / 8 * 8;
    std::vector<int> seen(static_cast<size_t>(rows * cols));
    std::vector<uint16_t> idx(static_cast<size_t>(rows * cols));
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<uint16_t>(i * 2654435761u >> 16);
    const std::vector<uint16_t> by_hand = to_rows8(idx, rows, cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t at = bf16_offset(r, c, cols, r8);
        ++seen.at(static_cast<size_t>(at));
        ASSERT_EQ(by_hand[static_cast<size_t>(at)], idx[static_cast<size_t>(r * cols + c)])
            << rows << "x" << cols << " (" << r << ", " << c << ")";
      }
    for (int v : seen) ASSERT_EQ(v, 1) << rows << "x" << cols;
  }
}

// Every small-rows path, whole and split at every output (a split inside a group makes the
// tiles start off the group edges), gives the row-major bits; so do the reference and the
// prompt path.
TEST(Bf16Rows8, EveryPathGivesTheRowMajorBits) {
  std::vector<Isa> levels;
  for (Isa l : {Isa::Scalar, Isa::Avx512, Isa::Avx512Bf16})
    if (isa_enabled(l)) levels.push_back(l);
  for (auto& sh : kShapes) {
    const Bf16Pair p = make_pair(sh[0], sh[1], 3);
    const int64_t out = sh[0], in = sh[1];
    for (int64_t rows : {1, 2, 3, 5, 9, 16}) {
      const std::vector<float> x = random_x(rows * in, 11);
      for (Isa level : levels) {
        std::vector<float> a(static_cast<size_t>(rows * out)), b(a.size());
        matmul_xwt_bf16_gemv(x.data(), p.rows_data(), a.data(), rows, in, out, false, level);
        matmul_xwt_bf16_gemv(x.data(), p.rows8_data(), b.data(), rows, in, out, false, level);
        expect_same_bits(a, b, isa_name(level));
      }
      for (Bf16Activations act : {Bf16Activations::Exact, Bf16Activations::RoundedToBf16}) {
        if (act == Bf16Activations::RoundedToBf16 && !small_rows_bf16_dot_available()) continue;
        std::vector<float> want(static_cast<size_t>(rows * out)), got(want.size(), -1.0f);
        matmul_xwt_bf16(x.data(), p.rows_data(), want.data(), rows, in, out, false, act);
        const int64_t step = out > 100 ? 37 : 1;
        for (int64_t cut = 0; cut <= out; cut += step) {
          matmul_xwt_bf16_part(x.data(), p.rows8_data(), got.data(), rows, in, out, false, act, 0,
                               cut);
          matmul_xwt_bf16_part(x.data(), p.rows8_data(), got.data(), rows, in, out, false, act,
                               cut, out);
          expect_same_bits(want, got, "part");
        }
      }
    }
    for (int64_t rows : {1, 40}) {  // the typed entry: decode rows and the prompt path
      const std::vector<float> x = random_x(rows * in, 5);
      std::vector<float> a(static_cast<size_t>(rows * out)), b(a.size());
      matmul_xwt(x.data(), rows, p.rows_view(), a.data());
      matmul_xwt(x.data(), rows, p.rows8_view(), b.data());
      expect_same_bits(a, b, "matmul_xwt");
      matmul_xwt_bf16_ref(x.data(), p.rows_data(), a.data(), rows, in, out);
      matmul_xwt_bf16_ref(x.data(), p.rows8_data(), b.data(), rows, in, out);
      expect_same_bits(a, b, "reference");
    }
  }
}

TEST(Bf16Rows8, GatherGivesTheRows) {
  const Bf16Pair p = make_pair(29, 96, 8);
  std::vector<int32_t> ids = {0, 7, 8, 15, 16, 23, 24, 28, 3};
  std::vector<float> a(ids.size() * 96), b(a.size());
  gather_rows(ids.data(), static_cast<int64_t>(ids.size()), p.rows_view(), a.data());
  gather_rows(ids.data(), static_cast<int64_t>(ids.size()), p.rows8_view(), b.data());
  expect_same_bits(a, b, "gather");
  for (size_t i = 0; i < ids.size(); ++i)  // and they are the rows themselves
    for (int64_t c = 0; c < 96; ++c)
      ASSERT_EQ(a[i * 96 + c], bf16_to_f32(p.w[static_cast<size_t>(ids[i] * 96 + c)]));
}

TEST(Bf16Rows8, RefusesRows8ThatTheKernelCannotStep) {
  if (!small_rows_kernel_available()) GTEST_SKIP() << "no AVX-512";
  std::vector<uint16_t> w(16 * 48);
  std::vector<float> xs(64), y(16);
  // 48 inputs: not a multiple of 32.
  EXPECT_THROW(gemm_small_nt_bf16_split(1, 16, 48, xs.data(), 64, Bf16Data(w.data(), 8), 48, 0.0f,
                                        y.data(), 16),
               Error);
  // Part of a group.
  EXPECT_THROW(gemm_small_nt_bf16_split(1, 16, 32, xs.data(), 64, Bf16Data(w.data(), 4), 32, 0.0f,
                                        y.data(), 16),
               Error);
}

namespace {
ModelConfig config() {
  return ModelConfig::from_json(
      {{"vocab_size", 77}, {"d_model", 64}, {"n_layer", 3}, {"d_state", 8}, {"attn_heads", 2},
       {"layers", {"h3", "attention", "h3"}}},
      "bf16 rows8 test");
}

struct Logits {
  std::vector<float> forward, decode;
};

Logits logits_of(LanguageModel& m) {
  const int L = 12, P = 5;
  std::vector<int32_t> tok(L);
  for (int i = 0; i < L; ++i) tok[i] = (i * 37 + 5) % 77;
  const int64_t V = m.config().padded_vocab();
  Logits out;
  const float* lg = m.forward(tok.data(), 1, L);
  out.forward.assign(lg, lg + L * V);
  ModelState st = m.new_state(1);
  m.prefill(tok.data(), 1, P, st);
  for (int t = P; t < L; ++t) {
    const float* s = m.step(&tok[t], st);
    out.decode.insert(out.decode.end(), s, s + V);
  }
  return out;
}

int count_rows8(LanguageModel& m) {
  int n = 0;
  for (const ParamRef& p : m.params())
    n += p.param->has_stored() && p.param->stored.bf16_layout == Bf16Layout::Rows8;
  return n;
}
}  // namespace

// A whole model converted in each order, and relaid out both ways, gives the same bits.
TEST(Bf16Rows8, ModelsGiveTheSameLogitsInEitherOrder) {
  LanguageModel a(config()), b(config());
  a.init(4);
  b.init(4);
  convert_weights_to_bf16(a, Bf16Layout::Rows);
  convert_weights_to_bf16(b, Bf16Layout::Rows8);
  const int n8 = count_rows8(b);
  EXPECT_EQ(count_rows8(a), 0);
  EXPECT_GT(n8, 0);
  // Saved sessions name the weights by a fingerprint of their elements in row-major order.
  EXPECT_EQ(weights_fingerprint(a), weights_fingerprint(b));
  const Logits la = logits_of(a), lb = logits_of(b);
  expect_same_bits(la.forward, lb.forward, "forward");
  expect_same_bits(la.decode, lb.decode, "decode");
  relayout_bf16_weights(a, Bf16Layout::Rows8);
  relayout_bf16_weights(b, Bf16Layout::Rows);
  EXPECT_EQ(count_rows8(a), n8);
  EXPECT_EQ(count_rows8(b), 0);
  const Logits la2 = logits_of(a), lb2 = logits_of(b);
  expect_same_bits(la.decode, la2.decode, "relaid out to Rows8");
  expect_same_bits(la.decode, lb2.decode, "relaid out to Rows");
  expect_same_bits(la.forward, lb2.forward, "forward, relaid out to Rows");
}
