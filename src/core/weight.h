// Typed weights: a read-only matrix in one of the dtypes inference keeps weights in. Kernels
// take a WeightView and pick their path from a per-dtype table (kernels/matmul.h), so a new
// dtype is one enum value, its table row, and its loader.
#pragma once
#include <cstdint>

#include "core/bf16.h"

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

// How a Q8 matrix's bytes are ordered (issue 18, session 11).
//  - Rows: row-major values, scales (rows, cols / kQ8Block). Files hold this layout.
//  - Rows4: rows in groups of four, each group's values interleaved in 64-byte chunks
//    (chunk c of rows j = 0..3 at c * 256 + j * 64 within the group; a last half chunk, when
//    cols % 64 == 32, at full * 256 + j * 32), its scales in quads of 8 blocks (quad q of row j
//    at q * 32 + j * 8; a last partial quad of `rem` blocks at Q * 32 + j * rem). The last
//    rows % 4 rows follow row-major. A group's 4 * cols bytes and 4 * cols / 32 scales are where
//    the Rows layout has them, so whole groups slice alike. Batch-1 decoding reads four rows at
//    once: here that is one sequential stream instead of four strided ones (the hardware
//    prefetchers follow one stream better; models/q8_weights.h says when it is used).
enum class Q8Layout : uint8_t { Rows = 0, Rows4 = 1 };

// How a BF16 matrix's elements are ordered (issue 18, session 13).
//  - Rows: row-major. Files hold this layout.
//  - Rows8: rows in groups of eight, each group's 32-element (64-byte) chunks interleaved:
//    element (j, col) of a group (j = 0..7) at (col / 32) * 256 + j * 32 + col % 32 within the
//    group's 8 * cols elements; cols a multiple of 32; the last rows % 8 rows row-major. The
//    small-rows kernel reads eight rows per tile: here one sequential stream instead of eight
//    strided ones (models/bf16_weights.h says when it is used).
enum class Bf16Layout : uint8_t { Rows = 0, Rows8 = 1 };

// The elements of a bf16 matrix and how many of its leading rows are in the Rows8 order (0: all
// row-major). Converts implicitly from a row-major pointer, so the kernels' row-major callers
// (tests, benchmarks) pass a plain pointer.
struct Bf16Data {
  const uint16_t* w = nullptr;
  int64_t rows8 = 0;
  Bf16Data(const uint16_t* p, int64_t r8 = 0) : w(p), rows8(r8) {}  // NOLINT: implicit on purpose
};
// Where element (row, col) of a (rows, cols) bf16 matrix is: the one definition of Rows8 that
// every kernel and reference follows.
inline int64_t bf16_offset(int64_t row, int64_t col, int64_t cols, int64_t rows8) {
  if (row >= rows8) return row * cols + col;
  return row / 8 * 8 * cols + col / 32 * 256 + row % 8 * 32 + col % 32;
}

// (rows, cols) row-major; data null means "no view" (Param::stored when fp32 is used).
struct WeightView {
  DType dtype = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0, cols = 0;
  const float* scales = nullptr;  // Q8 only: (rows, cols / kQ8Block) in the order of `layout`
  Q8Layout layout = Q8Layout::Rows;
  Bf16Layout bf16_layout = Bf16Layout::Rows;  // BF16 only
  // Q8 in Rows4 only, instead of `scales` (which is then null): the same scales as bf16, in the
  // same order (issue 18, session 14). Only where every scale is a bf16 value, so the results
  // are the fp32 scales' bit for bit; 2 bytes a block instead of 4 (a 125M model's decode step
  // reads 142 MB instead of 150). models/q8_weights.h says when.
  const uint16_t* scales_bf16 = nullptr;

  // Rows [r0, r0 + n) as a view of their own. Rows4 (and bf16's Rows8 alike): both ends on a
  // group boundary or in the row-major tail (q8_row_slice_ok), which the callers check.
  WeightView row_slice(int64_t r0, int64_t n) const {
    const int64_t s0 = r0 * (cols / kQ8Block);
    return {dtype,
            static_cast<const char*>(data) + r0 * cols * dtype_size(dtype),
            n,
            cols,
            scales ? scales + s0 : nullptr,
            layout,
            bf16_layout,
            scales_bf16 ? scales_bf16 + s0 : nullptr};
  }
  WeightView with_layout(Q8Layout l) const {
    WeightView v = *this;
    v.layout = l;
    return v;
  }
};

// A BF16 view's data for the kernels (the rows in Rows8 order).
inline Bf16Data bf16_data(const WeightView& w) {
  return {static_cast<const uint16_t*>(w.data),
          w.bf16_layout == Bf16Layout::Rows8 ? w.rows / 8 * 8 : 0};
}

// Where element (row, col) of a Q8 view's values is, and the scale of (row, block), in its
// layout: the one definition of Rows4 that every kernel and reference follows.
inline int64_t q8_value_offset(const WeightView& w, int64_t row, int64_t col) {
  const int64_t r4 = w.rows / 4 * 4;
  if (w.layout == Q8Layout::Rows || row >= r4) return row * w.cols + col;
  const int64_t base = row / 4 * 4 * w.cols, j = row % 4, c = col / 64, full = w.cols / 64;
  return base + (c < full ? c * 256 + j * 64 : full * 256 + j * 32) + col % 64;
}
inline int64_t q8_scale_offset(const WeightView& w, int64_t row, int64_t block) {
  const int64_t nb = w.cols / kQ8Block, r4 = w.rows / 4 * 4;
  if (w.layout == Q8Layout::Rows || row >= r4) return row * nb + block;
  const int64_t base = row / 4 * 4 * nb, j = row % 4, q = block / 8, nq = nb / 8;
  return base + (q < nq ? q * 32 + j * 8 : nq * 32 + j * (nb - nq * 8)) + block % 8;
}
// The scale of (row, block) of a Q8 view, whichever type its scales are stored in.
inline float q8_scale(const WeightView& w, int64_t row, int64_t block) {
  const int64_t i = q8_scale_offset(w, row, block);
  if (w.scales_bf16) return bf16_to_f32(w.scales_bf16[i]);
  return w.scales[i];
}
// Whether a Q8 view has its scales (in either type).
inline bool q8_has_scales(const WeightView& w) { return w.scales || w.scales_bf16; }
// Whether row_slice(r0, n) of a view in this layout is a view of those rows.
inline bool q8_row_slice_ok(const WeightView& w, int64_t r0, int64_t n) {
  const int64_t r4 = w.rows / 4 * 4;
  const auto edge = [&](int64_t r) { return r % 4 == 0 || r >= r4; };
  return w.layout == Q8Layout::Rows || (edge(r0) && edge(r0 + n));
}

}  // namespace hippo
