// Learning-rate multiplier: linear warmup from 0, then cosine decay to a floor.
#pragma once
#include <cstdint>

namespace hippo {

struct Schedule {
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  float min_ratio = 0.1f;  // floor, as a fraction of the peak learning rate

  // Multiplier for the update made at step `step` (0-based).
  float at(int64_t step) const;
};

}  // namespace hippo
