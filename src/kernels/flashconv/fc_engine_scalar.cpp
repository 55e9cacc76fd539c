// FlashConv engine instantiated for scalar (VecScalar lanes). Dispatch picks it at run time
// (flashconv.cpp); the pragma lets this file use the instruction set whatever -march says.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "core/scratch.h"
#include "kernels/flashconv/fc_internal.h"

#pragma GCC push_options

#include "kernels/flashconv/fc_vec_scalar.h"

namespace hippo::fc {
namespace {
#include "kernels/flashconv/fc_fft.h"
#include "kernels/flashconv/fc_engine.h"

void run_group(const Args& a, const FftPlan& plan, int g, int b0, int b1) {
  FusedOps<VecScalar>::run_group(a, plan, g, b0, b1);
}
}  // namespace

const Engine& engine_scalar() {
  static const Engine e{VecScalar::W, &run_group};
  return e;
}

}  // namespace hippo::fc
#pragma GCC pop_options
