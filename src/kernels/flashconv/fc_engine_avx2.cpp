// FlashConv engine instantiated for avx2 (VecAvx2 lanes). Dispatch picks it at run time
// (flashconv.cpp); the pragma lets this file use the instruction set whatever -march says.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "core/scratch.h"
#include "kernels/flashconv/fc_internal.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include "kernels/flashconv/fc_vec_avx2.h"

namespace hippo::fc {
namespace {
#include "kernels/flashconv/fc_fft.h"
#include "kernels/flashconv/fc_engine.h"

void run_group(const Args& a, const FftPlan& plan, int g, int b0, int b1) {
  FusedOps<VecAvx2>::run_group(a, plan, g, b0, b1);
}
}  // namespace

const Engine& engine_avx2() {
  static const Engine e{VecAvx2::W, &run_group};
  return e;
}

}  // namespace hippo::fc
#pragma GCC pop_options
