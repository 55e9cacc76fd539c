#include "nn/linear.h"

#include <algorithm>

#include "core/error.h"
#include "core/phase_profile.h"
#include "kernels/parallel_work.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"
#include "ssm/layout.h"

namespace hippo {

Linear::Linear(int in, int out, bool bias) : in_(in), out_(out), has_bias_(bias) {
  weight = make_param({out, in}, ParamKind::Decay);
  weight.accepts_stored = true;
  if (bias) this->bias = make_param({out}, ParamKind::NoDecay);
}

void Linear::collect_params(const std::string& prefix, ParamList& out) {
  out.push_back({prefix + "weight", &weight});
  if (has_bias_) out.push_back({prefix + "bias", &bias});
}

void Linear::init(Rng& rng, float std) {
  HIPPO_CHECK(!weight.has_stored(), "Linear::init: the weights are a read-only inference view");
  float* w = weight.value.data();
  for (int64_t i = 0; i < weight.value.numel(); ++i) w[i] = static_cast<float>(rng.normal() * std);
  if (has_bias_) bias.value.fill(0.0f);
}

void Linear::forward(const float* x, float* y, int64_t rows) const {
  if (has_bias_) {
    prof::Scope ps("linear.bias_fill");
    const float* b = bias.value.data();
#pragma omp parallel for schedule(static) if (worth_parallel(rows * out_))
    for (int64_t r = 0; r < rows; ++r)
      for (int o = 0; o < out_; ++o) y[r * out_ + o] = b[o];
  }
  matmul_xwt(x, rows, weight.view(), y, /*accumulate=*/has_bias_);
}

void Linear::forward_to_channel_major(const float* x, float* yT, int B, int L,
                                      Buffer& tmp) const {
  const WeightView W = weight.view();
  const int64_t n = static_cast<int64_t>(B) * L;
  if (W.dtype != DType::F32) {
    float* t = tmp.get_uninit(static_cast<size_t>(n * out_));  // written in full by forward
    forward(x, t, n);
    to_channel_major(t, yT, B, L, out_);
    return;
  }
  const auto* w = static_cast<const float*>(W.data);
  for (int b = 0; b < B; ++b) {
    float* yb = yT + static_cast<int64_t>(b) * out_ * L;
    if (has_bias_) {
      const float* bv = bias.value.data();
#pragma omp parallel for schedule(static) if (worth_parallel(int64_t{out_} * L))
      for (int o = 0; o < out_; ++o)
        for (int l = 0; l < L; ++l) yb[static_cast<int64_t>(o) * L + l] = bv[o];
    }
    // yT_b (out, L) = W (out, in) x_b^T (in, L)
    gemm(false, true, out_, L, in_, 1.0f, w, in_, x + static_cast<int64_t>(b) * L * in_, in_,
         has_bias_ ? 1.0f : 0.0f, yb, L);
  }
}

void Linear::forward_from_channel_major(const float* xT, float* y, int B, int L,
                                        Buffer& tmp) const {
  const WeightView W = weight.view();
  const int64_t n = static_cast<int64_t>(B) * L;
  if (W.dtype != DType::F32) {
    float* t = tmp.get_uninit(static_cast<size_t>(n * in_));  // written in full by the transpose
    to_channels_last(xT, t, B, L, in_);
    forward(t, y, n);
    return;
  }
  const auto* w = static_cast<const float*>(W.data);
  if (has_bias_) {
    const float* bv = bias.value.data();
#pragma omp parallel for schedule(static) if (worth_parallel(n * out_))
    for (int64_t r = 0; r < n; ++r)
      for (int o = 0; o < out_; ++o) y[r * out_ + o] = bv[o];
  }
  for (int b = 0; b < B; ++b)  // y_b (L, out) = xT_b^T (L, in) W^T (in, out)
    gemm(true, true, L, out_, in_, 1.0f, xT + static_cast<int64_t>(b) * in_ * L, L, w, in_,
         has_bias_ ? 1.0f : 0.0f, y + static_cast<int64_t>(b) * L * out_, out_);
}

void Linear::forward_part(const float* x, float* y, int64_t rows, int64_t begin,
                          int64_t end) const {
  if (has_bias_) {
    const float* b = bias.value.data();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = begin; o < end; ++o) y[r * out_ + o] = b[o];
  }
  matmul_xwt_part(x, rows, weight.view(), y, begin, end, /*accumulate=*/has_bias_);
}

void Linear::backward(const float* x, const float* dy, float* dx, int64_t rows,
                      bool accumulate_dx) {
  HIPPO_CHECK(!weight.has_stored(), "Linear::backward: the weights are a read-only bf16 view loaded for "
              "inference; training needs fp32 weights (load_model, not load_model_mapped)");
  // dW (out, in) += dy^T (out, rows) x (rows, in)
  gemm(true, false, out_, in_, rows, 1.0f, dy, out_, x, in_, 1.0f, weight.grad.data(), in_);
  if (has_bias_) {
    prof::Scope ps("linear.bias_grad");
    float* db = bias.grad.data();
    // Threads own blocks of columns, each summed over the rows in order: the same sums
    // whatever the thread count.
    constexpr int64_t kBlock = 64;
    const int64_t nblocks = (out_ + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (worth_parallel(rows * out_) && nblocks > 1)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const int64_t o0 = blk * kBlock, o1 = std::min<int64_t>(out_, o0 + kBlock);
      for (int64_t r = 0; r < rows; ++r)
#pragma omp simd
        for (int64_t o = o0; o < o1; ++o) db[o] += dy[r * out_ + o];
    }
  }
  if (dx)
    gemm(false, false, rows, in_, out_, 1.0f, dy, out_, weight.value.data(), in_,
         accumulate_dx ? 1.0f : 0.0f, dx, in_);
}

}  // namespace hippo
