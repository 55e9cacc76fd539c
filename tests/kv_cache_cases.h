// What the KV cache dtype tests (kv_bf16_test.cpp, kv_q8_test.cpp) share: a small hybrid with
// two attention layers of head_dim 64 (the AVX-512 kernels' shape, the 125M models'), and its
// logits over a prompt and steps.
#pragma once
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "models/lm.h"
#include "model_cases.h"

namespace hippo::kv_cases {

constexpr int kB = 2, kPrompt = 9, kSteps = 6;

inline std::unique_ptr<LanguageModel> hybrid(KvCacheDType kv) {
  auto m = std::make_unique<LanguageModel>(test_models::config_with(
      {{"layers", {"h3", "attention", "s4d", "attention"}}, {"n_layer", 4}, {"d_model", 128},
       {"attn_heads", 2}}));
  test_models::init_model(*m, 3);
  m->set_kv_cache(kv);
  return m;
}

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
  return d;
}

// Tokens laid out (time, batch) as step() takes them; prefill takes (batch, time), so the
// prompt is given row by row.
inline std::vector<int32_t> prompt_rows(const std::vector<int32_t>& tok, int prompt) {
  std::vector<int32_t> out(static_cast<size_t>(kB) * prompt);
  for (int b = 0; b < kB; ++b)
    for (int t = 0; t < prompt; ++t) out[b * prompt + t] = tok[t * kB + b];
  return out;
}

// The logits after the first `prompt` tokens (one prefill), then after each step to
// kPrompt + kSteps.
inline std::vector<float> run(const LanguageModel& m, const std::vector<int32_t>& tok, int prompt) {
  ModelState st = m.new_state(kB);
  const int64_t V = m.config().padded_vocab();
  const auto rows = prompt_rows(tok, prompt);
  std::vector<float> out;
  const float* lg = m.prefill(rows.data(), kB, prompt, st);
  out.insert(out.end(), lg, lg + kB * V);
  for (int t = prompt; t < kPrompt + kSteps; ++t) {
    lg = m.step(tok.data() + kB * t, st);
    out.insert(out.end(), lg, lg + kB * V);
  }
  return out;
}

}  // namespace hippo::kv_cases
