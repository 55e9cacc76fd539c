// Prefill's projections straight to and from the channel-major layout (Linear::
// forward_to_channel_major / forward_from_channel_major, H3::direct_layout) against the plain
// path: forward() and a transpose (ssm/layout.h), for fp32 weights (oneDNN with transposed
// operands) and bf16 weights (the fallback through the transpose); and whole H3 models'
// prefills with and without the direct layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/bf16.h"
#include "core/buffer.h"
#include "core/rng.h"
#include "model_cases.h"
#include "nn/h3.h"
#include "nn/linear.h"
#include "ssm/layout.h"

using namespace hippo;
using namespace hippo::test_models;

namespace {

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(a[i] - b[i])));
    den = std::max(den, static_cast<double>(std::fabs(b[i])));
  }
  return num / std::max(den, 1e-30);
}

std::vector<float> randn(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal());
  return v;
}

class LinearLayout : public ::testing::TestWithParam<bool> {};  // bf16 weights?

TEST_P(LinearLayout, ChannelMajorEqualsForwardAndTranspose) {
  const int in = 24, out = 40;
  Linear lin(in, out);
  Rng rng(5);
  lin.init(rng, 0.5f);
  for (int o = 0; o < out; ++o) lin.bias.value.data()[o] = static_cast<float>(rng.normal());
  std::vector<uint16_t> w16;
  if (GetParam()) {  // bf16 inference weights: the fallback path
    for (int64_t i = 0; i < lin.weight.value.numel(); ++i)
      w16.push_back(f32_to_bf16(lin.weight.value.data()[i]));
    lin.weight.stored = WeightView{DType::BF16, w16.data(), out, in};
  }
  for (int B : {1, 3})
    for (int L : {1, 37, 130}) {
      const std::vector<float> x = randn(static_cast<size_t>(B) * L * in, 7 + L);
      std::vector<float> y(static_cast<size_t>(B) * L * out), ref(y.size()), got(y.size());
      lin.forward(x.data(), y.data(), static_cast<int64_t>(B) * L);
      to_channel_major(y.data(), ref.data(), B, L, out);
      Buffer tmp;
      lin.forward_to_channel_major(x.data(), got.data(), B, L, tmp);
      EXPECT_LE(rel_err(got, ref), 1e-5) << "to channel-major B " << B << " L " << L;

      // Back: y = xT^T W^T + b for a channel-major input (B, in, L).
      const std::vector<float> xT = randn(static_cast<size_t>(B) * in * L, 9 + L);
      std::vector<float> xl(xT.size()), back(y.size()), back_ref(y.size());
      to_channels_last(xT.data(), xl.data(), B, L, in);
      lin.forward(xl.data(), back_ref.data(), static_cast<int64_t>(B) * L);
      lin.forward_from_channel_major(xT.data(), back.data(), B, L, tmp);
      EXPECT_LE(rel_err(back, back_ref), 1e-5) << "from channel-major B " << B << " L " << L;
    }
}

INSTANTIATE_TEST_SUITE_P(Weights, LinearLayout, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "bf16" : "fp32"; });

std::vector<H3*> h3_layers(LanguageModel& m) {
  std::vector<H3*> out;
  for (const auto& b : m.blocks())
    if (auto* h = dynamic_cast<H3*>(b->mixer.get())) out.push_back(h);
  return out;
}

// Logits of every position (score's path is prefill's run_chunk) and the final states' bytes.
struct PrefillRun {
  std::vector<float> last;
  std::vector<float> nll;
};

PrefillRun prefill_run(const LanguageModel& m, const std::vector<int32_t>& t, int B, int L, int chunk) {
  PrefillRun r;
  {
    ModelState st = m.new_state(B);
    st.chunk = chunk;
    const float* lg = m.prefill(t.data(), B, L, st);
    r.last.assign(lg, lg + static_cast<size_t>(B) * m.config().padded_vocab());
  }
  ModelState st = m.new_state(B);
  st.chunk = chunk;
  std::vector<int32_t> targets(t.begin() + 1, t.end());
  targets.push_back(0);
  r.nll.resize(static_cast<size_t>(B) * L);
  m.score(t.data(), targets.data(), B, L, st, r.nll.data());
  return r;
}

class H3Layout : public ::testing::TestWithParam<const char*> {};

TEST_P(H3Layout, DirectLayoutPrefillEqualsTransposes) {
  nlohmann::json cfg = {{"layers", {GetParam(), GetParam()}}, {"d_model", 32}};
  if (std::string(GetParam()) == "h3_head_dim_2") cfg = {{"layers", {"h3", "h3"}}, {"head_dim", 2}, {"d_model", 32}};
  LanguageModel m(config_with(cfg));
  init_model(m, 8);
  for (int B : {1, 2})
    for (auto [L, chunk] : {std::pair{150, 64}, std::pair{150, 150}, std::pair{70, 40}}) {
      const std::vector<int32_t> t = random_tokens(B * L, 41, 3 + L);
      const PrefillRun direct = prefill_run(m, t, B, L, chunk);
      for (H3* h : h3_layers(m)) h->direct_layout = false;
      const PrefillRun plain = prefill_run(m, t, B, L, chunk);
      for (H3* h : h3_layers(m)) h->direct_layout = true;
      EXPECT_LE(rel_err(direct.last, plain.last), 1e-5) << "B " << B << " L " << L;
      EXPECT_LE(rel_err(direct.nll, plain.nll), 1e-5) << "B " << B << " L " << L;
    }
}

INSTANTIATE_TEST_SUITE_P(All, H3Layout,
                         ::testing::Values("h3", "h3_noshift", "h3_nodiag", "h3_head_dim_2"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
