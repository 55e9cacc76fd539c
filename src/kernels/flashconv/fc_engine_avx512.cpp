// FlashConv engine instantiated for avx512 (VecAvx512 lanes). Dispatch picks it at run time
// (flashconv.cpp); the pragma lets this file use the instruction set whatever -march says.
// GCC 12's own AVX-512 intrinsics header trips -Wuninitialized (its "__Y = __Y" idiom for
// an undefined register); silence that for this file only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "core/scratch.h"
#include "kernels/flashconv/fc_internal.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")
#include "kernels/flashconv/fc_vec_avx512.h"

namespace hippo::fc {
namespace {
#include "kernels/flashconv/fc_fft.h"
#include "kernels/flashconv/fc_engine.h"

void run_group(const Args& a, const FftPlan& plan, int g, int b0, int b1) {
  FusedOps<VecAvx512>::run_group(a, plan, g, b0, b1);
}
}  // namespace

const Engine& engine_avx512() {
  static const Engine e{VecAvx512::W, &run_group};
  return e;
}

}  // namespace hippo::fc
#pragma GCC pop_options
