// hippo::ops (include/hippo/ops.hpp): the FlashConv kernels behind a public header, with the
// gradient outputs zeroed first (the kernels accumulate dK and dD).
#include "hippo/ops.hpp"

#include <algorithm>
#include <cstdint>

#include "core/error.h"
#include "core/threads.h"
#include "kernels/flashconv/flashconv.h"

namespace hippo::ops {

namespace {

void check_ptrs(const char* op, std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs) HIPPO_CHECK(p != nullptr, op, ": a null pointer argument");
}

void zero(float* p, int64_t n) { std::fill(p, p + n, 0.0f); }

}  // namespace

void fftconv_forward(const float* u, const float* k, const float* D, float* y, int B, int H,
                     int L) {
  apply_num_threads();
  check_ptrs("hippo::ops::fftconv_forward", {u, k, D, y});
  flashconv_fwd(u, k, D, y, B, H, L);
}

void fftconv_backward(const float* u, const float* k, const float* D, const float* dy, float* du,
                      float* dk, float* dD, int B, int H, int L) {
  apply_num_threads();
  check_ptrs("hippo::ops::fftconv_backward", {u, k, D, dy, du, dk, dD});
  HIPPO_CHECK(H >= 1 && L >= 1, "hippo::ops::fftconv_backward: H = ", H, ", L = ", L,
              " must be >= 1");
  zero(dk, static_cast<int64_t>(H) * L);
  zero(dD, H);
  flashconv_bwd(u, k, D, dy, du, dk, dD, B, H, L);
}

void h3_conv_forward(const float* q, const float* k, const float* v, const float* K,
                     const float* D, float* y, int B, int H, int L) {
  apply_num_threads();
  check_ptrs("hippo::ops::h3_conv_forward", {q, k, v, K, D, y});
  flashconv_h3_fwd(q, k, v, K, D, y, B, H, L);
}

void h3_conv_backward(const float* q, const float* k, const float* v, const float* K,
                      const float* D, const float* dy, float* dq, float* dk, float* dv, float* dK,
                      float* dD, int B, int H, int L) {
  apply_num_threads();
  check_ptrs("hippo::ops::h3_conv_backward", {q, k, v, K, D, dy, dq, dk, dv, dK, dD});
  HIPPO_CHECK(H >= 1 && L >= 1, "hippo::ops::h3_conv_backward: H = ", H, ", L = ", L,
              " must be >= 1");
  zero(dK, static_cast<int64_t>(H) * L);
  zero(dD, H);
  flashconv_h3_bwd(q, k, v, K, D, dy, dq, dk, dv, dK, dD, B, H, L);
}

}  // namespace hippo::ops
