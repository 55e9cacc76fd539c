// The interfaces every sequence mixer implements (parameters and Module: core/param.h).
#pragma once
#include <memory>

#include "core/param.h"
#include "core/rng.h"

namespace hippo {

// Per-sequence recurrent state of a mixer (SSM states, or an attention KV cache).
struct MixerState {
  virtual ~MixerState() = default;
};

// A sequence mixer: H3, attention, S4D, or an ablation. Inputs and outputs are (B, L, d)
// row-major, d = model width.
class Mixer : public Module {
 public:
  // Convolution (whole-sequence) mode. Keeps what backward needs until the next forward.
  virtual void forward(const float* x, float* y, int B, int L) = 0;
  // dy for the last forward; writes dx, adds parameter gradients into Param::grad.
  virtual void backward(const float* dy, float* dx) = 0;
  // Training-time initialisation (spec §1, §2, §4): linears N(0, std), output projections
  // N(0, std / sqrt(2 n_layer)).
  virtual void init(Rng& rng, int n_layer, float std = 0.02f) = 0;

  // Recurrent mode. A fresh state is the state before position 0.
  // new_state and step are const and write nothing but the state (its scratch included):
  // threads may step separate states of one layer at once. prefill runs forward() and uses
  // the layer's buffers like training does: one at a time.
  virtual std::unique_ptr<MixerState> new_state(int B) const = 0;
  // Runs a prompt x (B, L, d) from a fresh `state`, writes y, leaves the state after it.
  virtual void prefill(const float* x, float* y, int B, int L, MixerState& state) = 0;
  // One token per sequence: x, y are (B, d).
  virtual void step(const float* x, float* y, MixerState& state) const = 0;
};

}  // namespace hippo
