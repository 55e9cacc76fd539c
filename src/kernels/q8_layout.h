// Converting q8 matrices between the layouts of core/weight.h (Q8Layout): Rows (files, the
// reference) and Rows4 (batch-1 decoding on AVX512-VNNI reads four rows as one stream).
#pragma once
#include <cstdint>

#include "core/weight.h"

namespace hippo {

// Bytes of values and floats of scales of a (rows, cols) q8 matrix: the same in both layouts.
inline int64_t q8_value_bytes(int64_t rows, int64_t cols) { return rows * cols; }
inline int64_t q8_scale_count(int64_t rows, int64_t cols) { return rows * (cols / kQ8Block); }

// Rows [r0, r0 + n) of W (either layout) into row-major q (n, cols) and s (n, cols / 32).
void q8_copy_rows(const WeightView& W, int64_t r0, int64_t n, int8_t* q, float* s);

// Whether each of n scales is a bf16 value (its low 16 bits zero), so that storing it as bf16
// changes nothing (quantize_q8_weights makes them so).
bool q8_scales_are_bf16(const float* s, int64_t n);

// A row-major (rows, cols) q8 matrix (q, s) rewritten in `layout` into q_out and s_out, or,
// when s16_out is given (Rows4 only, and q8_scales_are_bf16 must hold), the scales as bf16 into
// s16_out (core/weight.h scales_bf16). The outputs must not overlap q, s. Returns the view of
// the result.
WeightView q8_relayout(const int8_t* q, const float* s, int64_t rows, int64_t cols,
                       Q8Layout layout, int8_t* q_out, float* s_out,
                       uint16_t* s16_out = nullptr);

}  // namespace hippo
