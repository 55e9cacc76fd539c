#include "kernels/matmul.h"

#include "core/error.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/gemm_q8.h"
#include "kernels/gemm_small.h"

namespace hippo {

namespace {

void xwt_f32(const float* x, int64_t rows, const WeightView& W, float* y, bool acc) {
  gemm(false, true, rows, W.rows, W.cols, 1.0f, x, W.cols, static_cast<const float*>(W.data),
       W.cols, acc ? 1.0f : 0.0f, y, W.rows);
}
void xwt_bf16(const float* x, int64_t rows, const WeightView& W, float* y, bool acc) {
  matmul_xwt_bf16(x, bf16_data(W), y, rows, W.cols, W.rows, acc);
}
void xwt_q8(const float* x, int64_t rows, const WeightView& W, float* y, bool acc) {
  matmul_xwt_q8(x, rows, W, y, acc);
}
void part_f32(const float* x, int64_t rows, const WeightView& W, float* y, int64_t b, int64_t e,
              bool acc) {
  const auto* w = static_cast<const float*>(W.data);
  if (small_rows_kernel_available())
    gemm_small_nt_part(rows, W.rows, W.cols, 1.0f, x, W.cols, w, W.cols, acc ? 1.0f : 0.0f, y,
                       W.rows, b, e);
  else if (b < e)
    gemm(false, true, rows, e - b, W.cols, 1.0f, x, W.cols, w + b * W.cols, W.cols,
         acc ? 1.0f : 0.0f, y + b, W.rows);
}
void part_bf16(const float* x, int64_t rows, const WeightView& W, float* y, int64_t b, int64_t e,
               bool acc) {
  matmul_xwt_bf16_part(x, bf16_data(W), y, rows, W.cols, W.rows, acc,
                       bf16_activations(), b, e);
}
void part_q8(const float* x, int64_t rows, const WeightView& W, float* y, int64_t b, int64_t e,
             bool acc) {
  matmul_xwt_q8_part(x, rows, W, y, acc, b, e);
}
void gather_f32(const int32_t* ids, int64_t n, const WeightView& W, float* y) {
  embedding_forward(ids, static_cast<const float*>(W.data), y, n, W.rows, W.cols);
}
void gather_bf16(const int32_t* ids, int64_t n, const WeightView& W, float* y) {
  embedding_forward_bf16(ids, bf16_data(W), y, n, W.rows, W.cols);
}

void gather_q8(const int32_t* ids, int64_t n, const WeightView& W, float* y) {
  for (int64_t i = 0; i < n; ++i) {
    HIPPO_CHECK(ids[i] >= 0 && ids[i] < W.rows, "embedding: token id ", ids[i], " at position ", i,
                " is outside [0, ", W.rows, ")");
    dequantize_q8_rows(W, ids[i], 1, y + i * W.cols);
  }
}

struct DTypeKernels {
  void (*xwt)(const float*, int64_t, const WeightView&, float*, bool);
  void (*gather)(const int32_t*, int64_t, const WeightView&, float*);
  void (*part)(const float*, int64_t, const WeightView&, float*, int64_t, int64_t, bool);
};

// One row per DType, in enum order.
constexpr DTypeKernels kKernels[kNumDTypes] = {
    {xwt_f32, gather_f32, part_f32},    // F32
    {xwt_bf16, gather_bf16, part_bf16},  // BF16
    {xwt_q8, gather_q8, part_q8},      // Q8
};

const DTypeKernels& kernels_for(const WeightView& W) {
  const auto i = static_cast<int>(W.dtype);
  HIPPO_CHECK(i >= 0 && i < kNumDTypes && W.data != nullptr, "matmul: weight of dtype ", i,
              W.data ? "" : " has no data");
  return kKernels[i];
}

}  // namespace

void matmul_xwt(const float* x, int64_t rows, const WeightView& W, float* y, bool accumulate) {
  kernels_for(W).xwt(x, rows, W, y, accumulate);
}

void matmul_xwt_part(const float* x, int64_t rows, const WeightView& W, float* y, int64_t begin,
                     int64_t end, bool accumulate) {
  HIPPO_CHECK(rows >= 0 && rows <= kStepRowsMax, "matmul_xwt_part: ", rows, " rows (at most ",
              kStepRowsMax, ")");
  HIPPO_CHECK(0 <= begin && begin <= end && end <= W.rows, "matmul_xwt_part: outputs [", begin,
              ", ", end, ") outside [0, ", W.rows, ")");
  if (rows == 0 || begin == end) return;
  kernels_for(W).part(x, rows, W, y, begin, end, accumulate);
}

void gather_rows(const int32_t* ids, int64_t n, const WeightView& W, float* y) {
  kernels_for(W).gather(ids, n, W, y);
}

}  // namespace hippo
