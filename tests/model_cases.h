// Small random models of every kind, for the tests that compare recurrent generation paths
// (step_many, state bytes): configs, a scaled init and token sequences.
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "models/config.h"
#include "models/lm.h"

namespace hippo::test_models {

inline ModelConfig config_with(nlohmann::json extra) {
  nlohmann::json j = {{"vocab_size", 41}, {"d_model", 16}, {"n_layer", 2}, {"d_state", 8},
                      {"attn_heads", 2}};
  for (auto& [k, v] : extra.items()) j[k] = v;
  return ModelConfig::from_json(j, "test");
}

// Random init with the matrices scaled up, so that every layer moves the logits by O(1) and a
// wrong recurrent state shows as a large difference.
inline void init_model(LanguageModel& m, uint64_t seed) {
  m.init(seed);
  for (auto& p : m.params()) {
    if (p.param->kind != ParamKind::Decay) continue;
    float* w = p.param->value.data();
    for (int64_t i = 0; i < p.param->value.numel(); ++i) w[i] *= 15.0f;
  }
}

inline std::vector<int32_t> random_tokens(int n, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng.below(V));
  return t;
}

struct Case {
  const char* name;
  nlohmann::json cfg;
};

// Every mixer kind, the ablations and a hybrid.
inline const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"h3", {{"layers", {"h3", "h3"}}}},
      {"h3_head_dim_2", {{"layers", {"h3", "h3"}}, {"head_dim", 2}, {"d_model", 32}}},
      {"attention_rotary", {{"layers", {"attention", "attention"}}, {"rotary_dim", 4}}},
      {"attention_learned_pos",
       {{"layers", {"attention", "attention"}}, {"learned_pos", true}, {"max_position", 40}}},
      {"s4d", {{"layers", {"s4d", "s4d"}}}},
      {"h3_noshift", {{"layers", {"h3_noshift", "h3_noshift"}}}},
      {"h3_nodiag", {{"layers", {"h3_nodiag", "h3_nodiag"}}}},
      {"hybrid", {{"layers", {"h3", "attention", "s4d"}}, {"n_layer", 3}, {"d_model", 24}}},
  };
  return c;
}

}  // namespace hippo::test_models
