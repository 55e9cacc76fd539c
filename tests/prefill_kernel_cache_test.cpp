// H3's prefill kernels are kept in the layer and shared by the next prefills (H3::
// prefill_kernels): a prefill after a parameter changed must not use the old kernels, and the
// shared path equals the reference path (share_prefill_kernels = false: fresh kernels on every
// call) and the whole-sequence forward, for every H3 variant.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <vector>

#include "model_cases.h"
#include "nn/h3.h"
#include "nn/s4d_mixer.h"
#include "ssm/s4d.h"
#include "ssm/shift.h"

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

std::vector<H3*> h3_layers(LanguageModel& m) {
  std::vector<H3*> out;
  for (const auto& b : m.blocks())
    if (auto* h = dynamic_cast<H3*>(b->mixer.get())) out.push_back(h);
  return out;
}

std::vector<float> prefill_last(const LanguageModel& m, const std::vector<int32_t>& t, int L,
                                int chunk) {
  ModelState st = m.new_state(1);
  st.chunk = chunk;
  const float* lg = m.prefill(t.data(), 1, L, st);
  return std::vector<float>(lg, lg + m.config().padded_vocab());
}

std::vector<float> forward_last(LanguageModel& m, const std::vector<int32_t>& t, int L) {
  const int64_t V = m.config().padded_vocab();
  const float* f = m.forward(t.data(), 1, L);
  return std::vector<float>(f + (L - 1) * V, f + L * V);
}

class PrefillKernelCache : public ::testing::TestWithParam<const char*> {};

TEST_P(PrefillKernelCache, FollowsParameterChangesAndEqualsTheReference) {
  LanguageModel m(config_with({{"layers", {GetParam(), GetParam()}}}));
  init_model(m, 4);
  const std::vector<int32_t> t = random_tokens(40, 41, 9);
  const size_t V = static_cast<size_t>(m.config().padded_vocab());
  // A long prefill first (the shared kernels then cover 16 positions), then shorter ones that
  // reuse a prefix of them.
  for (int L : {40, 5, 16, 37}) {
    const std::vector<float> shared = prefill_last(m, t, L, 16);
    EXPECT_LE(rel_err(shared.data(), forward_last(m, t, L).data(), V), 1e-5) << "L " << L;
    for (H3* h : h3_layers(m)) h->share_prefill_kernels = false;
    const std::vector<float> fresh = prefill_last(m, t, L, 16);
    for (H3* h : h3_layers(m)) h->share_prefill_kernels = true;
    EXPECT_EQ(shared, fresh) << "L " << L;  // the same arithmetic: bitwise
  }
  // Change one value of each kernel parameter in turn: the next prefill follows it.
  const std::vector<float> before = prefill_last(m, t, 12, 16);
  H3& h = *h3_layers(m).at(0);
  std::vector<Param*> ps;
  if (h.use_shift()) ps.insert(ps.end(), {&h.shift_->B, &h.shift_->C});
  if (h.use_diag())
    for (Param* p : {&h.diag_->log_dt, &h.diag_->inv_A_real, &h.diag_->A_imag, &h.diag_->B,
                     &h.diag_->C})
      ps.push_back(p);
  ASSERT_FALSE(ps.empty());
  for (size_t i = 0; i < ps.size(); ++i) {
    Param* p = ps[i];
    p->value.data()[p->value.numel() - 1] += 0.5f;
    const std::vector<float> after = prefill_last(m, t, 12, 16);
    EXPECT_LE(rel_err(after.data(), forward_last(m, t, 12).data(), V), 1e-5) << "parameter " << i;
  }
  EXPECT_GT(rel_err(prefill_last(m, t, 12, 16).data(), before.data(), V), 1e-3)
      << "the parameter changes did not move the logits: the test could not fail";
}

INSTANTIATE_TEST_SUITE_P(All, PrefillKernelCache,
                         ::testing::Values("h3", "h3_noshift", "h3_nodiag"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace

namespace {

// The blocked state advance of prefill (a float table of powers per block of 64 tokens) against
// the one-mode-at-a-time recurrence in double, from a nonzero state, at lengths around the
// block size; and a chunked H3 prefill with chunks of whole blocks against the forward.
TEST(PrefillAdvance, BlockedEqualsReference) {
  const int H = 3, N = 64;
  S4DKernel k(H, N);
  Rng rng(11);
  k.init(rng);
  k.discretize();
  const S4DKernel::Discrete dyn = k.discretized();
  S4DKernel::AdvanceTable table;
  for (int L : {1, 63, 64, 65, 128, 200, 4099}) {
    std::vector<float> u(static_cast<size_t>(L));
    for (auto& v : u) v = static_cast<float>(rng.normal());
    for (int h = 0; h < H; ++h) {
      std::vector<std::complex<float>> x0(static_cast<size_t>(k.M()));
      for (auto& v : x0) v = {static_cast<float>(rng.normal()), static_cast<float>(rng.normal())};
      auto fast = x0, ref = x0;
      k.advance_table(dyn, h, table);
      k.advance_state_blocked(dyn, table, h, u.data(), L, fast.data());
      k.advance_state_reference(h, u.data(), L, ref.data());
      double num = 0, den = 0;
      for (int n = 0; n < k.M(); ++n) {
        num = std::max(num, static_cast<double>(std::abs(fast[n] - ref[n])));
        den = std::max(den, static_cast<double>(std::abs(ref[n])));
      }
      EXPECT_LE(num / den, 2e-6) << "L " << L << " h " << h;
    }
  }
}

TEST(PrefillAdvance, ChunksOfWholeBlocksEqualTheForward) {
  LanguageModel m(config_with({{"layers", {"h3", "h3"}}}));
  init_model(m, 6);
  const std::vector<int32_t> t = random_tokens(300, 41, 5);
  const size_t V = static_cast<size_t>(m.config().padded_vocab());
  for (int chunk : {64, 100, 128}) {
    const std::vector<float> got = prefill_last(m, t, 300, chunk);
    EXPECT_LE(rel_err(got.data(), forward_last(m, t, 300).data(), V), 1e-5) << "chunk " << chunk;
  }
}

}  // namespace

namespace {

// The shift SSM's state advance (prefill, vectorised) against prompt_state of the whole
// sequence (its state depends only on the last N inputs), from every split point class.
TEST(PrefillAdvance, ShiftAdvanceEqualsPromptState) {
  const int H = 2, N = 64;
  ShiftKernel k(H, N);
  Rng rng(12);
  k.init(rng);
  for (float* p : {k.B.value.data(), k.C.value.data()})
    for (int i = 0; i < H * N; ++i) p[i] = static_cast<float>(rng.normal());
  for (int P : {0, 5, 64, 70})
    for (int L : {1, 10, 63, 64, 65, 200}) {
      std::vector<float> u(static_cast<size_t>(P + L));
      for (auto& v : u) v = static_cast<float>(rng.normal());
      for (int h = 0; h < H; ++h) {
        std::vector<float> s(N, 0.0f), ref(N);
        if (P > 0) k.prompt_state(h, u.data(), P, s.data());
        k.advance_state(h, u.data() + P, L, s.data());
        k.prompt_state(h, u.data(), P + L, ref.data());
        for (int n = 0; n < N; ++n)
          EXPECT_NEAR(s[n], ref[n], 1e-5 * (1 + std::fabs(ref[n])))
              << "P " << P << " L " << L << " n " << n;
      }
    }
}

}  // namespace

namespace {

// S4DMixer keeps its prefill kernel the same way (S4DMixer::prefill_kernels).
std::vector<S4DMixer*> s4d_layers(LanguageModel& m) {
  std::vector<S4DMixer*> out;
  for (const auto& b : m.blocks())
    if (auto* s = dynamic_cast<S4DMixer*>(b->mixer.get())) out.push_back(s);
  return out;
}

TEST(PrefillKernelCacheS4D, FollowsParameterChangesAndEqualsTheReference) {
  LanguageModel m(config_with({{"layers", {"s4d", "s4d"}}}));
  init_model(m, 4);
  const std::vector<int32_t> t = random_tokens(40, 41, 9);
  const size_t V = static_cast<size_t>(m.config().padded_vocab());
  ASSERT_EQ(s4d_layers(m).size(), 2u);
  for (int L : {40, 5, 16, 37}) {
    const std::vector<float> shared = prefill_last(m, t, L, 16);
    EXPECT_LE(rel_err(shared.data(), forward_last(m, t, L).data(), V), 1e-5) << "L " << L;
    for (S4DMixer* s : s4d_layers(m)) s->share_prefill_kernels = false;
    const std::vector<float> fresh = prefill_last(m, t, L, 16);
    for (S4DMixer* s : s4d_layers(m)) s->share_prefill_kernels = true;
    EXPECT_EQ(shared, fresh) << "L " << L;
  }
  const std::vector<float> before = prefill_last(m, t, 12, 16);
  S4DKernel& k = *s4d_layers(m).at(0)->kernel_;
  for (Param* p : {&k.log_dt, &k.inv_A_real, &k.A_imag, &k.B, &k.C}) {
    p->value.data()[p->value.numel() - 1] += 0.5f;
    const std::vector<float> after = prefill_last(m, t, 12, 16);
    EXPECT_LE(rel_err(after.data(), forward_last(m, t, 12).data(), V), 1e-5);
  }
  EXPECT_GT(rel_err(prefill_last(m, t, 12, 16).data(), before.data(), V), 1e-3)
      << "the parameter changes did not move the logits: the test could not fail";
}

}  // namespace
