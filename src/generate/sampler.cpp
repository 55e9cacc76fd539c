#include "generate/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/finite.h"

namespace hippo {

int32_t argmax(const float* x, int n) {
  // The first index of the largest value (NaN never counts unless it is x[0], which then wins,
  // as in the plain loop: best = 0; if (x[i] > x[best]) best = i). Two passes that vectorise:
  // the plain loop's chain of dependent compares took 0.7% of a q8 decode step (50,257 logits).
  if (n <= 0 || std::isnan(x[0])) return 0;
  float m = x[0];
#pragma omp simd reduction(max : m)
  for (int i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
  for (int i0 = 0; i0 < n; i0 += 64) {  // blocks tested whole, then the first hit found
    const int end = std::min(n, i0 + 64);
    int hit = 0;
#pragma omp simd reduction(| : hit)
    for (int i = i0; i < end; ++i) hit |= x[i] == m;
    if (hit)
      for (int i = i0; i < end; ++i)
        if (x[i] == m) return i;
  }
  return 0;
}

void check_logits_finite(const float* logits, int V, int64_t position) {
  const int64_t i = first_nonfinite(logits, V);
  if (i < 0) return;
  fail("sampler: the model's logits are not finite", position >= 0 ? str(" at position ", position) : "",
       " (logit ", i, " of ", V, " is ", logits[i],
       "); refusing to sample (are the weights or the saved state broken?)");
}

Sampler::Sampler(SamplerConfig cfg, uint64_t seed) : cfg_(cfg), rng_(seed) {
  HIPPO_CHECK(std::isfinite(cfg.temperature) && cfg.temperature >= 0.0f,
              "sampler: temperature must be >= 0, got ", cfg.temperature);
  HIPPO_CHECK(cfg.top_k >= 0, "sampler: top_k must be >= 0 (0 = off), got ", cfg.top_k);
  HIPPO_CHECK(cfg.top_p > 0.0f && cfg.top_p <= 1.0f, "sampler: top_p must be in (0, 1], got ",
              cfg.top_p);
}

void Sampler::candidates(const float* logits, int V, std::vector<int32_t>& ids,
                         std::vector<float>& probs, int64_t position) {
  HIPPO_CHECK(V >= 1, "sampler: vocabulary size must be >= 1, got ", V);
  check_logits_finite(logits, V, position);
  ids.clear();
  probs.clear();
  if (cfg_.temperature == 0.0f) {
    ids.push_back(argmax(logits, V));
    probs.push_back(1.0f);
    return;
  }
  // Softmax at the temperature, in double so that tiny probabilities still order correctly.
  scaled_.resize(static_cast<size_t>(V));
  const float mx = logits[argmax(logits, V)];
  const double inv_t = 1.0 / cfg_.temperature;
  ids.resize(static_cast<size_t>(V));
  for (int i = 0; i < V; ++i) {
    scaled_[i] = std::exp((static_cast<double>(logits[i]) - mx) * inv_t);
    ids[i] = i;
  }
  auto more_likely = [&](int32_t a, int32_t b) {
    return scaled_[a] > scaled_[b] || (scaled_[a] == scaled_[b] && a < b);
  };
  size_t keep = ids.size();
  if (cfg_.top_k > 0 && static_cast<size_t>(cfg_.top_k) < keep) {
    keep = static_cast<size_t>(cfg_.top_k);
    std::nth_element(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep - 1), ids.end(),
                     more_likely);
    ids.resize(keep);
  }
  std::sort(ids.begin(), ids.end(), more_likely);
  double total = 0;
  for (int32_t i : ids) total += scaled_[i];
  if (cfg_.top_p < 1.0f) {
    // The smallest prefix whose mass reaches top_p (at least one token).
    const double want = cfg_.top_p * total;
    double mass = 0;
    size_t n = 0;
    while (n < ids.size()) {
      mass += scaled_[ids[n++]];
      if (mass >= want) break;
    }
    ids.resize(n);
    total = mass;
  }
  probs.resize(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) probs[i] = static_cast<float>(scaled_[ids[i]] / total);
}

int32_t Sampler::sample(const float* logits, int V, int64_t position) {
  HIPPO_CHECK(V >= 1, "sampler: vocabulary size must be >= 1, got ", V);
  // argmax skips NaN (every comparison is false) and the softmax turns one Inf into NaN
  // probabilities: both would return a token as if nothing were wrong.
  check_logits_finite(logits, V, position);
  if (cfg_.temperature == 0.0f) return argmax(logits, V);
  if (cfg_.top_k == 0 && cfg_.top_p >= 1.0f) {
    // Nothing to truncate: inverse CDF in id order, without sorting the vocabulary.
    scaled_.resize(static_cast<size_t>(V));
    const float mx = logits[argmax(logits, V)];
    const double inv_t = 1.0 / cfg_.temperature;
    double total = 0;
    for (int i = 0; i < V; ++i) total += scaled_[i] = std::exp((static_cast<double>(logits[i]) - mx) * inv_t);
    const double u = rng_.uniform() * total;
    double c = 0;
    for (int i = 0; i < V; ++i) {
      c += scaled_[i];
      if (u < c) return i;
    }
    return argmax(logits, V);
  }
  candidates(logits, V, ids_, probs_, position);
  // Inverse CDF over the candidates, most likely first.
  const double u = rng_.uniform();
  double c = 0;
  for (size_t i = 0; i < ids_.size(); ++i) {
    c += probs_[i];
    if (u < c) return ids_[i];
  }
  return ids_.back();  // rounding left u above the last partial sum
}

}  // namespace hippo
