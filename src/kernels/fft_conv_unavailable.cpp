// fft_conv.h when hippo is built without FFTW (-DHIPPO_WITH_FFTW=OFF, CMakeLists.txt picks this
// file instead of fft_conv.cpp): the reference convolution is unavailable and says so. The
// engine's own paths (FlashConv, direct convolution, recurrence) do not use it.
#include "core/error.h"
#include "kernels/fft_conv.h"

namespace hippo {

namespace {
[[noreturn]] void unavailable() {
  fail("the FFTW reference convolution (reference_conv) is not in this build: "
       "hippo was configured with -DHIPPO_WITH_FFTW=OFF");
}
}  // namespace

void fft_causal_conv(const float*, const float*, float*, int, int, int) { unavailable(); }

void fft_causal_conv_backward(const float*, const float*, const float*, float*, float*, int, int,
                              int) {
  unavailable();
}

std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}

int fft_conv_size(int L) {
  int n = 2;
  while (n < 2 * L) n *= 2;
  return n;
}

}  // namespace hippo
