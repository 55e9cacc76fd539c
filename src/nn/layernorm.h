// LayerNorm over the last axis (spec §4: norm1, norm2, ln_f; eps 1e-5).
#pragma once
#include "core/buffer.h"
#include "nn/module.h"

namespace hippo {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int d, float eps = 1e-5f);
  // "weight" (init 1) and "bias" (init 0), both NoDecay.
  void collect_params(const std::string& prefix, ParamList& out) override;
  // Resets weight to 1 and bias to 0.
  void init();

  // x, y: (rows, d); y may alias x. Keeps a copy of x and the row statistics for backward.
  void forward(const float* x, float* y, int64_t rows);
  // The same y without keeping anything (recurrent steps; threads may call it at once).
  // `stats`: scratch for the row statistics, owned by the caller.
  void forward_inference(const float* x, float* y, int64_t rows, Buffer& stats) const;
  // The same with the row statistics in `stats` (2 * rows floats): each thread of a decoding
  // step's region normalises the rows into its own copy (cheaper than a barrier).
  void forward_inference(const float* x, float* y, int64_t rows, float* stats) const;
  // dy for the last forward: dx overwritten (may alias dy), weight/bias grads accumulated.
  void backward(const float* dy, float* dx);
  void release_activations() override;

  int dim() const { return d_; }
  Param weight, bias;

 private:
  int d_;
  float eps_;
  int64_t rows_ = 0;
  Buffer x_, mean_, rstd_;
};

}  // namespace hippo
