// Layout changes between the model's channels-last activations (B, L, d) and the
// channel-major (B, d, L) layout the convolutions use (each channel's sequence contiguous).
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/parallel_work.h"

namespace hippo {

// x (B, L, d) -> xt (B, d, L).
inline void to_channel_major(const float* x, float* xt, int B, int L, int d) {
  // Tiles of 8 channels x 128 positions: with L a power of two the channel rows are 4 KiB
  // apart and share cache sets, so only a few rows may be in flight at once.
  constexpr int TC = 8, TL = 128;
#pragma omp parallel for collapse(2) schedule(static) if (worth_parallel(int64_t{B} * L * d))
  for (int b = 0; b < B; ++b)
    for (int l0 = 0; l0 < L; l0 += TL) {
      const float* xb = x + static_cast<int64_t>(b) * L * d;
      float* tb = xt + static_cast<int64_t>(b) * L * d;
      const int l1 = std::min(L, l0 + TL);
      for (int c0 = 0; c0 < d; c0 += TC) {
        const int c1 = std::min(d, c0 + TC);
        for (int l = l0; l < l1; ++l)
          for (int c = c0; c < c1; ++c)
            tb[static_cast<int64_t>(c) * L + l] = xb[static_cast<int64_t>(l) * d + c];
      }
    }
}

// xt (B, d, L) -> x (B, L, d).
inline void to_channels_last(const float* xt, float* x, int B, int L, int d) {
  constexpr int TC = 8, TL = 128;  // see to_channel_major
#pragma omp parallel for collapse(2) schedule(static) if (worth_parallel(int64_t{B} * L * d))
  for (int b = 0; b < B; ++b)
    for (int c0 = 0; c0 < d; c0 += TC) {
      const float* tb = xt + static_cast<int64_t>(b) * L * d;
      float* xb = x + static_cast<int64_t>(b) * L * d;
      const int c1 = std::min(d, c0 + TC);
      for (int l0 = 0; l0 < L; l0 += TL) {
        const int l1 = std::min(L, l0 + TL);
        for (int l = l0; l < l1; ++l)
          for (int c = c0; c < c1; ++c)
            xb[static_cast<int64_t>(l) * d + c] = tb[static_cast<int64_t>(c) * L + l];
      }
    }
}

}  // namespace hippo
