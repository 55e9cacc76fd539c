#include "train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace hippo {

float Schedule::at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps)
    return static_cast<float>(step + 1) / static_cast<float>(warmup_steps);
  const int64_t decay_steps = std::max<int64_t>(1, total_steps - warmup_steps);
  const double progress =
      std::clamp(static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps), 0.0, 1.0);
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  return static_cast<float>(min_ratio + (1.0 - min_ratio) * cosine);
}

}  // namespace hippo
