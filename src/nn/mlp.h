// The block MLP (spec §4): fc1 d->4d, GELU (tanh approximation), fc2 4d->d, with biases.
#pragma once
#include "core/buffer.h"
#include "core/team.h"
#include "nn/linear.h"
#include "nn/module.h"

namespace hippo {

class Mlp : public Module {
 public:
  explicit Mlp(int d);
  // "fc1.weight" (4d, d), "fc1.bias", "fc2.weight" (d, 4d), "fc2.bias".
  void collect_params(const std::string& prefix, ParamList& out) override;
  // Weights N(0, 0.02), fc2.weight N(0, 0.02/sqrt(2 n_layer)), biases 0.
  void init(Rng& rng, int n_layer, float std = 0.02f);

  // x, y: (rows, d); y must not alias x. Keeps a copy of x, the pre-activation and the
  // activation for backward.
  void forward(const float* x, float* y, int64_t rows);
  // The same y without keeping anything (recurrent steps; threads may call it at once).
  // `hidden`: scratch for the activations, owned by the caller: (min(rows, kInferenceRows), 4d),
  // the rows going through in blocks of kInferenceRows. A prefill chunk's (4096, 4d) hidden
  // rows were 50 MB at d 768, the largest buffer of an H3 prefill's peak; 1024 rows keep the
  // products large and the block's activations (12.6 MB) in the last-level cache.
  static constexpr int64_t kInferenceRows = 1024;
  void forward_inference(const float* x, float* y, int64_t rows, Buffer& hidden) const;
  // forward_inference by one thread of a team inside a decoding step's region (core/team.h),
  // rows <= kStepRowsMax: every thread of the team calls it with the same arguments. x must be
  // complete; `hidden` holds the team's (rows, 4d) activations (written in shares, one barrier).
  // On return this thread has written columns team.share(d) of y; the other columns are other
  // threads' (the caller's barrier waits for them).
  void forward_team(const float* x, float* y, int64_t rows, float* hidden, const Team& team) const;
  // dy for the last forward: dx overwritten, parameter grads accumulated.
  void backward(const float* dy, float* dx);
  void release_activations() override;

  int dim() const { return d_; }
  Linear fc1, fc2;

 private:
  int d_;
  // The shared body: pre and act (rows, 4d) may be the same buffer (GELU is elementwise).
  void run(const float* x, float* y, int64_t rows, float* pre, float* act) const;
  int64_t rows_ = 0;
  Buffer x_, pre_, act_, grad_;
};

}  // namespace hippo
