// Finiteness scans for weights and logits: one pass over the bit patterns that the compiler
// vectorises (an OR over a block of "exponent all ones" tests, then a search only inside a
// block that has one), so checking every weight at load costs about one read of the weights.
#pragma once
#include <algorithm>
#include <bit>
#include <cstdint>

namespace hippo {

namespace finite_detail {

// Index of the first element whose exponent bits are all ones (Inf or NaN), or -1.
template <typename Bits, Bits kExponent, typename T, typename ToBits>
int64_t first_nonfinite(const T* x, int64_t n, ToBits bits) {
  constexpr int64_t kBlock = 4096;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    Bits bad = 0;
    for (int64_t i = b; i < e; ++i) bad |= static_cast<Bits>((bits(x[i]) & kExponent) == kExponent);
    if (bad)
      for (int64_t i = b; i < e; ++i)
        if ((bits(x[i]) & kExponent) == kExponent) return i;
  }
  return -1;
}

}  // namespace finite_detail

// Index of the first NaN or Inf in x[0, n), or -1 when all are finite.
inline int64_t first_nonfinite(const float* x, int64_t n) {
  return finite_detail::first_nonfinite<uint32_t, 0x7f800000u>(
      x, n, [](float v) { return std::bit_cast<uint32_t>(v); });
}

// The same for bfloat16 bit patterns (the upper half of an fp32).
inline int64_t first_nonfinite_bf16(const uint16_t* x, int64_t n) {
  return finite_detail::first_nonfinite<uint16_t, uint16_t{0x7f80}>(x, n, [](uint16_t v) { return v; });
}

}  // namespace hippo
