// Typed weights: a read-only matrix in one of the dtypes inference keeps weights in. Kernels
// take a WeightView and pick their path from a per-dtype table (kernels/matmul.h), so a new
// dtype is one enum value, its table row, and its loader.
#pragma once
#include <cstdint>

namespace hippo {

enum class DType : uint8_t { F32 = 0, BF16 = 1 };
inline constexpr int kNumDTypes = 2;

inline const char* dtype_name(DType t) { return t == DType::F32 ? "F32" : "BF16"; }
inline int dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

// (rows, cols) row-major; data null means "no view" (Param::stored when fp32 is used).
struct WeightView {
  DType dtype = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0, cols = 0;

  // Rows [r0, r0 + n) as a view of their own.
  WeightView row_slice(int64_t r0, int64_t n) const {
    return {dtype, static_cast<const char*>(data) + r0 * cols * dtype_size(dtype), n, cols};
  }
};

}  // namespace hippo
