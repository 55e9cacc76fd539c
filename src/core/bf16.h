// bfloat16 storage: the upper 16 bits of an IEEE fp32. Widening is exact; narrowing rounds to
// nearest even (as PyTorch's .to(torch.bfloat16) does), NaN stays NaN.
#pragma once
#include <cstdint>
#include <cstring>

namespace hippo {

inline float bf16_to_f32(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Whether f is a bf16 value (its low 16 bits zero): narrowing it to bf16 changes nothing.
inline bool is_bf16_value(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (u & 0xFFFFu) == 0;
}

// The smallest bf16 value >= f, for finite f >= 0 (q8 weight scales, kernels/gemm_q8.h: rounded
// up so that the quantized values still fit).
inline float bf16_round_up(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (u & 0xFFFFu) u = (u | 0xFFFFu) + 1;
  std::memcpy(&f, &u, 4);
  return f;
}

inline void f32_to_bf16(const float* x, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(x[i]);
}

inline void bf16_to_f32(const uint16_t* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(x[i]);
}

}  // namespace hippo
