// Parameters and the interfaces every layer implements.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace hippo {

// How the optimizer treats a parameter (spec §1, §4):
//  Decay:       matrices and embeddings, AdamW weight decay applies.
//  NoDecay:     biases, norm gains, skip terms D.
//  SsmDynamics: log_dt, inv_A_real, A_imag, B of the diagonal SSM and B of the shift SSM;
//               learning rate min(lr, 1e-3), no weight decay.
enum class ParamKind { Decay, NoDecay, SsmDynamics };

struct Param {
  Tensor value;
  Tensor grad;  // same shape; accumulated (+=) by backward
  ParamKind kind = ParamKind::Decay;
  // Inference with bf16 weights (models/load.h): when set, the value is this read-only bf16
  // array (row-major, value's shape) in memory the model keeps alive, and `value` has the shape
  // but no storage. Only parameters whose layer reads it (Linear weights, the token embedding)
  // accept one; such a model cannot be trained or saved.
  const uint16_t* bf16 = nullptr;
  bool accepts_bf16 = false;
};

Param make_param(Shape shape, ParamKind kind);

// A parameter with its full official name (e.g. "backbone.layers.0.mixer.q_proj.weight").
struct ParamRef {
  std::string name;
  Param* param;
};
using ParamList = std::vector<ParamRef>;

class Module {
 public:
  virtual ~Module() = default;
  // Appends every parameter, its name prefixed by `prefix` (which ends in '.' or is empty).
  virtual void collect_params(const std::string& prefix, ParamList& out) = 0;
  // Frees what forward keeps for backward and the forward/backward temporaries (not
  // recurrent-step scratch). Inference calls it after each layer of a long prompt so that a
  // prompt costs one layer's activations at a time, not all layers' (docs/checkpoints.md).
  virtual void release_activations() {}
};

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
