#include "kernels/q8_layout.h"

#include <cstring>

#include "core/error.h"

namespace hippo {

namespace {
constexpr int64_t B = kQ8Block;
}

void q8_copy_rows(const WeightView& W, int64_t r0, int64_t n, int8_t* q, float* s) {
  HIPPO_CHECK(W.dtype == DType::Q8 && W.cols % B == 0 && r0 >= 0 && n >= 0 && r0 + n <= W.rows,
              "q8_copy_rows: rows [", r0, ", ", r0 + n, ") of a (", W.rows, ", ", W.cols,
              ") q8 view");
  const auto* wq = static_cast<const int8_t*>(W.data);
  const int64_t nb = W.cols / B;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t b = 0; b < nb; ++b) {  // a block's 32 values are contiguous in both layouts
      std::memcpy(q + r * W.cols + b * B, wq + q8_value_offset(W, r0 + r, b * B), B);
      s[r * nb + b] = q8_scale(W, r0 + r, b);
    }
}

bool q8_scales_are_bf16(const float* s, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!is_bf16_value(s[i])) return false;
  return true;
}

WeightView q8_relayout(const int8_t* q, const float* s, int64_t rows, int64_t cols,
                       Q8Layout layout, int8_t* q_out, float* s_out, uint16_t* s16_out) {
  HIPPO_CHECK(cols % B == 0 && rows >= 0, "q8_relayout: (", rows, ", ", cols, ") q8 matrix");
  const int64_t nb = cols / B;
  HIPPO_CHECK(!s16_out || (layout == Q8Layout::Rows4 && q8_scales_are_bf16(s, rows * nb)),
              "q8_relayout: bf16 scales need the Rows4 layout and scales that are bf16 values");
  WeightView out{DType::Q8, q_out, rows, cols, s16_out ? nullptr : s_out, layout};
  out.scales_bf16 = s16_out;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      std::memcpy(q_out + q8_value_offset(out, r, b * B), q + r * cols + b * B, B);
      const float v = s[r * nb + b];
      const int64_t i = q8_scale_offset(out, r, b);
      if (s16_out)
        s16_out[i] = f32_to_bf16(v);  // exact: v is a bf16 value (checked above)
      else
        s_out[i] = v;
    }
  return out;
}

}  // namespace hippo
