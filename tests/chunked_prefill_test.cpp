// Chunked prefill and evaluation (docs/design.md "Chunked prefill and evaluation"): a sequence
// run chunk by chunk, every layer continuing from its state, equals the whole-sequence forward
// (the training path, an independent implementation) for every model kind, at lengths around
// the chunk boundaries, shorter than one chunk and with chunks shorter than the shift SSM's
// window; the final states equal those of one whole-sequence prefill; a prefill on a state that
// already holds tokens continues it; and prefill memory of an SSM-only model does not grow with
// the length.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/cross_entropy.h"
#include "model_cases.h"
#include "nn/attention.h"
#include "nn/h3.h"
#include "nn/s4d_mixer.h"

using namespace hippo;
using namespace hippo::test_models;

namespace {

double rel_err(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num = std::max(num, static_cast<double>(std::fabs(a[i] - b[i])));
    den = std::max(den, static_cast<double>(std::fabs(b[i])));
  }
  return num / std::max(den, 1e-30);
}

template <class T>
double rel_err_c(const std::vector<T>& a, const std::vector<T>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    num = std::max(num, static_cast<double>(std::abs(a[i] - b[i])));
    den = std::max(den, static_cast<double>(std::abs(b[i])));
  }
  return num / std::max(den, 1e-30);
}

// Largest relative difference between two model states' layer states (SSM states, KV caches).
double state_err(const LanguageModel& m, const ModelState& a, const ModelState& b) {
  EXPECT_EQ(a.position, b.position);
  double e = 0;
  for (size_t i = 0; i < a.layers.size(); ++i) {
    if (auto* h = dynamic_cast<const H3State*>(a.layers[i].get())) {
      auto& g = dynamic_cast<const H3State&>(*b.layers[i]);
      e = std::max({e, rel_err_c(h->shift, g.shift), rel_err_c(h->diag, g.diag)});
    } else if (auto* s = dynamic_cast<const S4DState*>(a.layers[i].get())) {
      e = std::max(e, rel_err_c(s->x, dynamic_cast<const S4DState&>(*b.layers[i]).x));
    } else {
      auto& c = dynamic_cast<const AttentionCache&>(*a.layers[i]);
      auto& r = dynamic_cast<const AttentionCache&>(*b.layers[i]);
      auto& att = dynamic_cast<const Attention&>(*m.blocks()[i]->mixer);
      EXPECT_EQ(c.len, r.len);
      // The cached rows of each (sequence, head) only: capacities may differ.
      const int64_t dh = att.head_dim(), pairs = static_cast<int64_t>(c.batch) * att.heads();
      std::vector<float> ck, rk;
      for (int64_t bh = 0; bh < pairs; ++bh)
        for (int64_t j = 0; j < c.len * dh; ++j) {
          ck.push_back(c.k[bh * c.capacity * dh + j]), ck.push_back(c.v[bh * c.capacity * dh + j]);
          rk.push_back(r.k[bh * r.capacity * dh + j]), rk.push_back(r.v[bh * r.capacity * dh + j]);
        }
      e = std::max(e, rel_err_c(ck, rk));
    }
  }
  return e;
}

// -log softmax(logits)[target] of every row, through the training kernel.
std::vector<float> row_nll(const float* logits, const std::vector<int32_t>& targets, int64_t V) {
  std::vector<float> out;
  for (size_t i = 0; i < targets.size(); ++i)
    out.push_back(static_cast<float>(cross_entropy(logits + i * V, &targets[i], nullptr, 1, V)));
  return out;
}

constexpr double kTol = 1e-5;

}  // namespace

namespace hippo::test_models {
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }
}  // namespace hippo::test_models

namespace {

class ChunkedKinds : public ::testing::TestWithParam<Case> {};

// prefill in chunks of 1, 3 and 8 (the shift SSM's window is d_state = 8 taps) at lengths below,
// at and around chunk boundaries: the last logits equal the whole-sequence forward's and the
// states equal one whole-sequence prefill's; score's per-position losses equal the forward's.
TEST_P(ChunkedKinds, EqualsWholeSequenceForward) {
  const Case& c = GetParam();
  LanguageModel m(config_with(c.cfg));
  init_model(m, 3);
  const int64_t V = m.config().padded_vocab();
  for (int B : {1, 2}) {
    const int Lmax = 33;
    const std::vector<int32_t> tok = random_tokens(B * Lmax, 41, 7 + B);
    for (int L : {1, 2, 3, 7, 8, 9, 16, 17, 24, 33}) {
      std::vector<int32_t> t(static_cast<size_t>(B) * L);
      for (int b = 0; b < B; ++b)
        std::copy_n(tok.begin() + b * Lmax, L, t.begin() + static_cast<int64_t>(b) * L);
      const float* full = m.forward(t.data(), B, L);
      std::vector<float> last(static_cast<size_t>(B) * V);
      for (int b = 0; b < B; ++b)
        std::copy_n(full + (static_cast<int64_t>(b) * L + L - 1) * V, V, last.begin() + b * V);
      // Targets: the next token, the last position uncounted.
      std::vector<int32_t> targets(t.size(), -1);
      for (int b = 0; b < B; ++b)
        for (int i = 0; i + 1 < L; ++i) targets[b * L + i] = t[b * L + i + 1];
      const std::vector<float> ref_nll = row_nll(full, targets, V);

      ModelState whole = m.new_state(B);
      whole.chunk = 1 << 20;
      m.prefill(t.data(), B, L, whole);
      for (int chunk : {1, 3, 8}) {
        ModelState st = m.new_state(B);
        st.chunk = chunk;
        const float* lg = m.prefill(t.data(), B, L, st);
        EXPECT_LE(rel_err(lg, last.data(), last.size()), kTol)
            << c.name << " B=" << B << " L=" << L << " chunk=" << chunk;
        EXPECT_LE(state_err(m, st, whole), kTol) << c.name << " B=" << B << " L=" << L << " chunk=" << chunk;

        ModelState sc = m.new_state(B);
        sc.chunk = chunk;
        std::vector<float> nll(t.size(), -1.0f);
        const LossStats s = m.score(t.data(), targets.data(), B, L, sc, nll.data());
        EXPECT_EQ(s.count, static_cast<int64_t>(B) * (L - 1));
        EXPECT_LE(rel_err(nll.data(), ref_nll.data(), nll.size()), kTol)
            << c.name << " score B=" << B << " L=" << L << " chunk=" << chunk;
        EXPECT_EQ(sc.position, L);
      }
    }
  }
}

// A prefill on a state that holds tokens continues it (what Session::prefill does on a session
// that is not fresh): prompt, then two more prefills, equal the forward over all of them.
TEST_P(ChunkedKinds, PrefillContinuesAState) {
  const Case& c = GetParam();
  LanguageModel m(config_with(c.cfg));
  init_model(m, 5);
  const int64_t V = m.config().padded_vocab();
  const std::vector<int32_t> t = random_tokens(30, 41, 11);
  const float* full = m.forward(t.data(), 1, 30);
  for (int chunk : {4, 64}) {
    ModelState st = m.new_state(1);
    st.chunk = chunk;
    m.prefill(t.data(), 1, 13, st);
    const float* lg = m.prefill(t.data() + 13, 1, 1, st);
    EXPECT_LE(rel_err(lg, full + 13 * V, V), kTol) << c.name << " chunk " << chunk;
    lg = m.prefill(t.data() + 14, 1, 16, st);
    EXPECT_LE(rel_err(lg, full + 29 * V, V), kTol) << c.name << " chunk " << chunk;
    EXPECT_EQ(st.position, 30);
  }
}

// A prefill after steps: the H3 layers' shift SSM is then kept as its ring of inputs (the
// state s it stands for is made again before the prefill reads it, ssm/shift.h). Prompt,
// steps, a prefill and steps again equal the forward over all the tokens.
TEST_P(ChunkedKinds, PrefillAfterStepsContinuesAState) {
  const Case& c = GetParam();
  LanguageModel m(config_with(c.cfg));
  init_model(m, 6);
  const int64_t V = m.config().padded_vocab();
  const int L = 6 + 20 + 7 + 2;
  const std::vector<int32_t> t = random_tokens(L, 41, 12);
  const float* full = m.forward(t.data(), 1, L);
  ModelState st = m.new_state(1);
  m.prefill(t.data(), 1, 6, st);
  const float* lg = nullptr;
  for (int i = 6; i < 26; ++i) lg = m.step(t.data() + i, st);
  EXPECT_LE(rel_err(lg, full + 25 * V, V), kTol) << c.name;
  lg = m.prefill(t.data() + 26, 1, 7, st);
  EXPECT_LE(rel_err(lg, full + 32 * V, V), kTol) << c.name;
  for (int i = 33; i < L; ++i) lg = m.step(t.data() + i, st);
  EXPECT_LE(rel_err(lg, full + (L - 1) * V, V), kTol) << c.name;
}

INSTANTIATE_TEST_SUITE_P(All, ChunkedKinds, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// The comparison can fail: a chunked prefill that dropped the state between chunks is far off.
TEST(Chunked, DroppedStateIsDetected) {
  LanguageModel m(config_with({{"layers", {"h3", "h3"}}}));
  init_model(m, 3);
  const int64_t V = m.config().padded_vocab();
  const std::vector<int32_t> t = random_tokens(20, 41, 2);
  const float* full = m.forward(t.data(), 1, 20);
  std::vector<float> last(full + 19 * V, full + 20 * V);
  ModelState a = m.new_state(1), b = m.new_state(1);
  m.prefill(t.data(), 1, 10, a);
  m.prefill(t.data() + 10, 1, 10, b);  // the second half without the first
  EXPECT_GT(rel_err(b.logits.data(), last.data(), V), 1e-2);
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
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

// Peak resident memory of prefill and score of an SSM-only model: 2K and 64K tokens in chunks of
// 512 cost the same (a whole-sequence pass at 64K would hold ~15 activations of 64K x 64 floats,
// over 60 MB more).
TEST(ChunkedMemory, SsmOnlyPrefillDoesNotGrowWithLength) {
  if (!reset_peak_rss() || peak_rss_kb() < 0) GTEST_SKIP() << "no /proc/self/clear_refs";
  LanguageModel m(config_with({{"layers", {"h3", "s4d"}}, {"d_model", 64}, {"d_state", 16}}));
  init_model(m, 1);
  const std::vector<int32_t> t = random_tokens(65536, 41, 4);
  std::vector<int32_t> targets(t.begin() + 1, t.end());
  targets.push_back(-1);
  auto measure = [&](int L, bool scoring) {
    ModelState st = m.new_state(1);
    st.chunk = 512;
    reset_peak_rss();
    const int64_t before = peak_rss_kb();
    if (scoring)
      m.score(t.data(), targets.data(), 1, L, st);
    else
      m.prefill(t.data(), 1, L, st);
    return peak_rss_kb() - before;
  };
  for (bool scoring : {false, true}) {
    measure(2048, scoring);  // warm: per-thread kernel scratch, FFT plans
    const int64_t small = measure(2048, scoring), large = measure(65536, scoring);
    std::printf("peak RSS growth (%s): 2K tokens %lld KiB, 64K tokens %lld KiB\n",
                scoring ? "score" : "prefill", static_cast<long long>(small),
                static_cast<long long>(large));
    EXPECT_LE(large, small + 4096) << (scoring ? "score" : "prefill");
  }
}

}  // namespace
