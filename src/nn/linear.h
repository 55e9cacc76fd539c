// y = x W^T + b, W: (out, in) as in PyTorch.
#pragma once
#include "core/buffer.h"
#include "nn/module.h"

namespace hippo {

class Linear : public Module {
 public:
  Linear(int in, int out, bool bias = true);
  void collect_params(const std::string& prefix, ParamList& out) override;
  // N(0, std) weights, zero bias.
  void init(Rng& rng, float std);

  // x: (rows, in) -> y: (rows, out). Does not keep x: callers pass it again to backward.
  // Reads the weight through Param::view() (fp32, or bf16 inference weights).
  void forward(const float* x, float* y, int64_t rows) const;
  // Outputs [begin, end) of forward (columns of y) on the calling thread, rows <=
  // kStepRowsMax (kernels/matmul.h): one thread's share inside a decoding step's parallel region
  // (core/team.h). Any split gives forward's y bit for bit where matmul_xwt_part says so.
  void forward_part(const float* x, float* y, int64_t rows, int64_t begin, int64_t end) const;
  // forward() for the channel-major layout the convolutions use (ssm/layout.h), without the
  // transpose pass: yT (B, out, L) = (x (B, L, in) W^T + b) with each sequence's rows and
  // columns swapped; and y (B, L, out) from channel-major xT (B, in, L). fp32 weights: oneDNN
  // with transposed operands writes/reads the layout directly; other dtypes: forward() and a
  // transpose through `tmp`. Equal to forward + to_channel_major / to_channels_last up to the
  // GEMM's rounding (tests/prefill_layout_test.cpp).
  void forward_to_channel_major(const float* x, float* yT, int B, int L, Buffer& tmp) const;
  void forward_from_channel_major(const float* xT, float* y, int B, int L, Buffer& tmp) const;
  // dx = dy W (overwrites, or adds if accumulate_dx), dW += dy^T x, db += sum_rows dy.
  // dx may be null when the input gradient is not needed. An Error with bf16 weights.
  void backward(const float* x, const float* dy, float* dx, int64_t rows,
                bool accumulate_dx = false);

  int in() const { return in_; }
  int out() const { return out_; }
  Param weight, bias;

 private:
  int in_, out_;
  bool has_bias_;
};

}  // namespace hippo
