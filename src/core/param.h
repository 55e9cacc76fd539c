// Parameters and the interface of everything that owns some (layers in nn/, SSM kernels in
// ssm/). Here in core so that both layers can use it; the mixer interfaces are in nn/module.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

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
  // Frees what forward keeps for backward and the forward/backward temporaries (training's
  // buffers; generation has none in the layers: its scratch is the state's Workspace).
  virtual void release_activations() {}
};

}  // namespace hippo
