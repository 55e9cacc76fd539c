// Picks the next token from logits: greedy (temperature 0) or sampling with temperature,
// top-k and top-p (nucleus), applied in that order. Deterministic given the seed.
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace hippo {

struct SamplerConfig {
  float temperature = 1.0f;  // 0: greedy (argmax, lowest id on ties)
  int top_k = 0;             // 0: no limit
  float top_p = 1.0f;        // 1: no limit; keep the fewest most likely tokens whose mass >= top_p
};

class Sampler {
 public:
  // Throws hippo::Error naming a bad field (temperature < 0, top_k < 0, top_p outside (0, 1]).
  Sampler(SamplerConfig cfg, uint64_t seed);
  const SamplerConfig& config() const { return cfg_; }

  // One token from logits[0, V). Buffers are reused across calls. Logits holding a NaN or Inf
  // (a broken model) are refused with an Error naming the logit and, when given (>= 0), the
  // position of the token being chosen; nothing is ever sampled from them.
  int32_t sample(const float* logits, int V, int64_t position = -1);

  // The tokens sampling may return, most likely first (ties: lower id first), and their
  // renormalised probabilities. Greedy: the argmax alone. Same refusal as sample().
  void candidates(const float* logits, int V, std::vector<int32_t>& ids,
                  std::vector<float>& probs, int64_t position = -1);

 private:
  SamplerConfig cfg_;
  Rng rng_;
  std::vector<int32_t> ids_;
  std::vector<float> probs_;
  std::vector<double> scaled_;
};

// Throws hippo::Error when logits[0, V) holds a NaN or Inf, naming the logit (and the position,
// when >= 0).
void check_logits_finite(const float* logits, int V, int64_t position = -1);

// Index of the largest of x[0, n), lowest on ties.
int32_t argmax(const float* x, int n);

}  // namespace hippo
