// A training or evaluation batch of token sequences and their next-token targets.
#pragma once
#include <cstdint>
#include <vector>

namespace hippo {

struct Batch {
  int B = 0, L = 0;
  std::vector<int32_t> tokens, targets;  // (B, L); targets < 0 are not counted
};

}  // namespace hippo
