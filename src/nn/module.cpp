#include "nn/module.h"

namespace hippo {

Param make_param(Shape shape, ParamKind kind) {
  Param p;
  p.value = Tensor::zeros(shape);
  p.grad = Tensor::zeros(std::move(shape));
  p.kind = kind;
  return p;
}

}  // namespace hippo
