// Deterministic random numbers (xoshiro256**, Box-Muller): the same seed gives the same
// stream on every machine and compiler, unlike std::normal_distribution.
#pragma once
#include <cstdint>

namespace hippo {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0);
  uint64_t next_u64();
  // Uniform in [0, 1).
  double uniform();
  float uniform(float lo, float hi) { return lo + static_cast<float>(uniform()) * (hi - lo); }
  // Standard normal.
  double normal();
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n);
  // An independent stream derived from this one (for per-thread or per-layer use).
  Rng fork();

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace hippo
