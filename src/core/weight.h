// Typed weights: a read-only matrix in one of the dtypes inference keeps weights in. Kernels
// take a WeightView and pick their path from a per-dtype table (kernels/matmul.h), so a new
// dtype is one enum value, its table row, and its loader.
#pragma once
#include <cstdint>

namespace hippo {

// Q8: int8 values in blocks of kQ8Block consecutive elements of a row, each block with one fp32
// scale (value = scale * q, q in [-127, 127]); the scales are a second (rows, cols / kQ8Block)
// array. cols must be a multiple of kQ8Block (models/q8_weights.h leaves other weights fp32).
enum class DType : uint8_t { F32 = 0, BF16 = 1, Q8 = 2 };
inline constexpr int kNumDTypes = 3;
inline constexpr int64_t kQ8Block = 32;

inline const char* dtype_name(DType t) {
  return t == DType::F32 ? "F32" : t == DType::BF16 ? "BF16" : "Q8";
}
// Bytes per element of `data` (Q8's scales are counted apart).
inline int dtype_size(DType t) { return t == DType::F32 ? 4 : t == DType::BF16 ? 2 : 1; }

// (rows, cols) row-major; data null means "no view" (Param::stored when fp32 is used).
struct WeightView {
  DType dtype = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0, cols = 0;
  const float* scales = nullptr;  // Q8 only: (rows, cols / kQ8Block)

  // Rows [r0, r0 + n) as a view of their own.
  WeightView row_slice(int64_t r0, int64_t n) const {
    return {dtype, static_cast<const char*>(data) + r0 * cols * dtype_size(dtype), n, cols,
            scales ? scales + r0 * (cols / kQ8Block) : nullptr};
  }
};

}  // namespace hippo
