#include "core/param.h"

namespace hippo {

Param make_param(Shape shape, ParamKind kind) {
  Param p;
  // Untouched too: inference replaces most values by weights mapped from the file.
  p.value = Tensor::zeros_untouched(shape);
  // Untouched until the first backward: a model used only for inference pays nothing for it.
  p.grad = Tensor::zeros_untouched(std::move(shape));
  p.kind = kind;
  return p;
}

}  // namespace hippo
