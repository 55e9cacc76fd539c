// Training with recomputation (LanguageModel::train_step_recompute, docs/design.md "Training on
// long sequences"): its loss and gradients equal those of the plain forward + loss + backward
// (an independent path: every block's activations kept) for every model kind, at several
// lengths, one sequence per piece or all, with ignored targets, dropout and a scale; it leaves
// backward() nothing to propagate; and its peak memory does not grow with the batch and is a
// fraction of the plain path's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "model_cases.h"

using namespace hippo;
using namespace hippo::test_models;

namespace {

std::vector<std::vector<float>> grads_of(const LanguageModel& m) {
  std::vector<std::vector<float>> g;
  for (auto& p : m.params())
    g.emplace_back(p.param->grad.data(), p.param->grad.data() + p.param->grad.numel());
  return g;
}

// Largest |a - b| over a parameter relative to its largest |b|, the worst parameter's.
double grad_err(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b,
                std::string* worst) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double num = 0, den = 0;
    for (size_t j = 0; j < a[i].size(); ++j) {
      num = std::max(num, static_cast<double>(std::fabs(a[i][j] - b[i][j])));
      den = std::max(den, static_cast<double>(std::fabs(b[i][j])));
    }
    const double r = num / std::max(den, 1e-30);
    if (r > e) {
      e = r;
      *worst = std::to_string(i);
    }
  }
  return e;
}

struct Step {
  LossStats stats;
  std::vector<std::vector<float>> grads;
};

Step plain_step(LanguageModel& m, const std::vector<int32_t>& t, const std::vector<int32_t>& y,
                int B, int L, float scale, uint64_t seed) {
  m.zero_grad();
  m.set_training(true, seed);
  m.forward(t.data(), B, L);
  Step s;
  s.stats = m.loss(y.data());
  m.backward(scale);
  s.grads = grads_of(m);
  return s;
}

// The plain path over the batch's sequences `per_piece` at a time, each piece's gradient
// weighted by its share of the counted targets: the same sums in the order the recomputing path
// adds them (fp32 rounding of the SSM parameters' gradients differs by ~2e-5 between summing
// per piece and over the whole batch, with the scaled-up test weights).
Step plain_pieces(LanguageModel& m, const std::vector<int32_t>& t, const std::vector<int32_t>& y,
                  int B, int L, float scale, uint64_t seed, int per_piece) {
  m.zero_grad();
  m.set_training(true, seed);
  int64_t total = 0;
  for (int32_t v : y) total += v >= 0;
  Step s;
  double nats = 0;
  for (int b0 = 0; b0 < B; b0 += per_piece) {
    const int p = std::min(per_piece, B - b0);
    const int64_t off = static_cast<int64_t>(b0) * L;
    m.forward(t.data() + off, p, L);
    const LossStats ls = m.loss(y.data() + off);
    if (ls.count > 0) m.backward(scale * static_cast<float>(static_cast<double>(ls.count) / total));
    nats += ls.loss * ls.count;
    s.stats.count += ls.count;
    s.stats.correct += ls.correct;
  }
  s.stats.loss = nats / total;
  s.grads = grads_of(m);
  return s;
}

Step recompute_step(LanguageModel& m, const std::vector<int32_t>& t,
                    const std::vector<int32_t>& y, int B, int L, float scale, uint64_t seed,
                    int per_piece) {
  m.zero_grad();
  m.set_training(true, seed);
  Step s;
  s.stats = m.train_step_recompute(t.data(), y.data(), B, L, scale, per_piece);
  s.grads = grads_of(m);
  return s;
}

// Targets: the next token, some ignored (-1) as padding is.
std::vector<int32_t> targets_for(const std::vector<int32_t>& t, int V, uint64_t seed) {
  std::vector<int32_t> y = random_tokens(static_cast<int>(t.size()), V, seed);
  for (size_t i = 0; i < y.size(); i += 7) y[i] = -1;
  return y;
}

class RecomputeKinds : public ::testing::TestWithParam<Case> {};

TEST_P(RecomputeKinds, EqualsPlainBackward) {
  LanguageModel m(config_with(GetParam().cfg));
  init_model(m, 3);
  const int V = m.config().vocab_size;
  for (int L : {1, 7, 16, 33}) {
    if (m.config().learned_pos && L > m.config().max_position) continue;
    const int B = 3;
    const auto t = random_tokens(B * L, V, 100 + L);
    const auto y = targets_for(t, V, 200 + L);
    const Step whole = plain_step(m, t, y, B, L, 0.5f, 9);
    for (int per_piece : {1, 2, 0}) {
      const Step ref = per_piece == 0 ? whole : plain_pieces(m, t, y, B, L, 0.5f, 9, per_piece);
      const Step got = recompute_step(m, t, y, B, L, 0.5f, 9, per_piece);
      std::string worst;
      const double e = grad_err(got.grads, ref.grads, &worst);
      EXPECT_LE(e, 1e-5) << GetParam().name << " L=" << L << " per_piece=" << per_piece
                         << " param " << m.params()[std::stoul(worst.empty() ? "0" : worst)].name;
      EXPECT_LE(grad_err(got.grads, whole.grads, &worst), 1e-4) << GetParam().name << " L=" << L;
      EXPECT_NEAR(got.stats.loss, ref.stats.loss, 1e-6 * std::fabs(ref.stats.loss));
      EXPECT_EQ(got.stats.count, ref.stats.count);
      EXPECT_EQ(got.stats.correct, ref.stats.correct);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, RecomputeKinds, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// With dropout and the whole batch in one piece the recomputed blocks draw the masks of the
// plain forward, so the gradients agree; in pieces the masks differ but stay a function of the
// seed (two runs agree bit for bit).
TEST(Recompute, DropoutMasksAreRedrawnAlike) {
  LanguageModel m(config_with({{"layers", {"h3", "s4d"}}, {"dropout", 0.25}}));
  init_model(m, 4);
  const int B = 2, L = 12, V = m.config().vocab_size;
  const auto t = random_tokens(B * L, V, 5);
  const auto y = targets_for(t, V, 6);
  const Step ref = plain_step(m, t, y, B, L, 1.0f, 77);
  const Step got = recompute_step(m, t, y, B, L, 1.0f, 77, B);
  std::string worst;
  EXPECT_LE(grad_err(got.grads, ref.grads, &worst), 1e-5) << "param " << worst;
  const Step a = recompute_step(m, t, y, B, L, 1.0f, 77, 1);
  const Step b = recompute_step(m, t, y, B, L, 1.0f, 77, 1);
  EXPECT_EQ(a.grads, b.grads);
  EXPECT_EQ(a.stats.loss, b.stats.loss);
  EXPECT_GT(grad_err(a.grads, ref.grads, &worst), 1e-3) << "pieces draw their own masks";
}

TEST(Recompute, LeavesNothingForBackward) {
  LanguageModel m(config_with({{"layers", {"h3", "h3"}}}));
  init_model(m, 1);
  const auto t = random_tokens(8, 41, 1);
  const auto y = targets_for(t, 41, 2);
  m.forward(t.data(), 1, 8);
  m.loss(y.data());
  m.train_step_recompute(t.data(), y.data(), 1, 8, 1.0f);
  EXPECT_THROW(m.backward(), Error);
  EXPECT_THROW(m.train_step_recompute(t.data(), y.data(), 0, 8, 1.0f), Error);
  EXPECT_THROW(m.train_step_recompute(t.data(), y.data(), 1, 8, 1.0f, -1), Error);
}

// The path is taken by size: the default training shapes stay plain, long sequences recompute.
TEST(Recompute, ChosenForLongSequences) {
  if (std::getenv("HIPPO_TRAIN_RECOMPUTE")) GTEST_SKIP() << "forced by the environment";
  LanguageModel m(config_with({{"layers", {"h3", "h3", "h3", "h3"}}, {"n_layer", 4}, {"d_model", 256},
                               {"vocab_size", 257}, {"d_state", 64}}));
  EXPECT_FALSE(m.prefers_recompute(16, 256));
  EXPECT_TRUE(m.prefers_recompute(16, 65536));
  EXPECT_TRUE(m.prefers_recompute(1, 65536));
}

int64_t peak_rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  return static_cast<bool>(f);
}

// Peak resident memory of a training step of an SSM-only model (d 32, 4 layers) at L = 16384,
// one sequence per piece: with recomputation it is the block inputs ((n_layer + 1) rows of d
// per token) plus one block's activations over one sequence, so three sequences cost what one
// does, and it is a fraction of the plain path's (every block's activations for the whole
// batch; about 136 rows of d per token against 42).
TEST(RecomputeMemory, DoesNotGrowWithBatch) {
  if (!reset_peak_rss() || peak_rss_kb() < 0) GTEST_SKIP() << "no /proc/self/clear_refs";
  LanguageModel m(config_with({{"layers", {"h3", "s4d", "h3", "h3_noshift"}}, {"n_layer", 4},
                               {"d_model", 32}, {"d_state", 16}}));
  init_model(m, 1);
  const int L = 16384, V = m.config().vocab_size;
  static_assert(LanguageModel::kRecomputePieceTokens <= 16384, "one sequence per piece");
  const auto t = random_tokens(3 * L, V, 4);
  const auto y = targets_for(t, V, 5);
  auto measure = [&](int B, bool recompute) {
    m.zero_grad();
    reset_peak_rss();
    const int64_t before = peak_rss_kb();
    if (recompute) {
      m.train_step_recompute(t.data(), y.data(), B, L, 1.0f);
    } else {
      m.forward(t.data(), B, L);
      m.loss(y.data());
      m.backward();
    }
    return peak_rss_kb() - before;
  };
  measure(1, true);  // warm: per-thread kernel scratch, FFT plans
  const int64_t one = measure(1, true), three = measure(3, true);
  const int64_t plain = measure(2, false);
  std::printf("peak RSS growth of a step at L=%d: recompute B=1 %lld KiB, B=3 %lld KiB; plain "
              "B=2 %lld KiB\n", L, static_cast<long long>(one), static_cast<long long>(three),
              static_cast<long long>(plain));
  // Growing with B would make it ~3x; huge pages (2 MiB granules) leave ~15 MB of slack.
  EXPECT_LE(three, one + one / 2 + 4096);
  EXPECT_LE(three * 3, plain);
}

}  // namespace
