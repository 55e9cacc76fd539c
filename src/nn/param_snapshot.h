// A bitwise snapshot of a layer's parameters, for caches derived from them (the prefill
// kernels of H3 and S4D layers): the cache is reused only while the parameters are unchanged.
#pragma once

#include <cstring>
#include <span>
#include <vector>

#include "core/param.h"

namespace hippo {

// The parameters' values, one after the other.
inline std::vector<float> snapshot_params(std::span<const Param* const> ps) {
  std::vector<float> out;
  for (const Param* p : ps) out.insert(out.end(), p->value.data(), p->value.data() + p->value.numel());
  return out;
}

// Whether `snapshot` holds exactly the parameters' values now. Bitwise, in place: a NaN
// parameter still matches itself, and -0.0 is not 0.0 to exp().
inline bool params_match(std::span<const Param* const> ps, const std::vector<float>& snapshot) {
  size_t off = 0;
  for (const Param* p : ps) {
    const size_t n = static_cast<size_t>(p->value.numel());
    if (off + n > snapshot.size() || std::memcmp(snapshot.data() + off, p->value.data(), sizeof(float) * n) != 0)
      return false;
    off += n;
  }
  return off == snapshot.size();
}

}  // namespace hippo
