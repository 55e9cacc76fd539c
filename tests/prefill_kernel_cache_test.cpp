// H3's prefill kernels are kept in the layer and shared by the next prefills (H3::
// prefill_kernels): a prefill after a parameter changed must not use the old kernels, and the
// shared path equals the reference path (share_prefill_kernels = false: fresh kernels on every
// call) and the whole-sequence forward, for every H3 variant.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "model_cases.h"
#include "nn/h3.h"

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
