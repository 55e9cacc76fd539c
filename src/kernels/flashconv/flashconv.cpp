// FlashConv dispatch: argument checks, instruction-set choice, and the OpenMP loop over
// channel groups (each group is one engine call: W channels, one per SIMD lane).
#include "kernels/flashconv/flashconv.h"

#include <omp.h>

#include <algorithm>

#include "core/error.h"
#include "kernels/flashconv/fc_internal.h"

namespace hippo {

namespace {

const fc::Engine& engine() {
  switch (flashconv_engine_isa(active_isa())) {
    case Isa::Avx512: return fc::engine_avx512();
    case Isa::Avx2: return fc::engine_avx2();
    default: return fc::engine_scalar();
  }
}

void check_shape(int B, int H, int L) {
  HIPPO_CHECK(B >= 1 && H >= 1 && L >= 1, "flashconv: shape (B, H, L) = (", B, ", ", H, ", ", L,
              ") must be positive");
  HIPPO_CHECK(L <= (1 << 27), "flashconv: L = ", L, " is too long for one FFT; use state passing");
}

void check_ptr(const void* p, const char* name) {
  HIPPO_CHECK(p != nullptr, "flashconv: '", name, "' is null");
}

}  // namespace

void fc::run(fc::Args a) {
  check_shape(a.B, a.H, a.L);
  if (a.ld == 0) a.ld = a.L;
  if (a.kld == 0) a.kld = a.L;
  HIPPO_CHECK(a.chunks >= 1, "flashconv: chunks = ", a.chunks, " must be positive");
  const int nb = a.B * a.chunks;  // batch elements the engine sees
  const fc::Engine& e = engine();
  const fc::FftPlan& plan = fc::fft_plan(fc::fft_size_for(a.L));
  const int groups = (a.H + e.W - 1) / e.W;
  // Forward ops may split the batch when there are fewer groups than threads (each part then
  // recomputes its group's kernel spectrum); backward keeps one owner per group so that dK
  // and dD accumulate without races.
  int split = 1;
  const int threads = omp_get_max_threads();
  if ((a.op == fc::Op::Fwd || a.op == fc::Op::H3Fwd) && groups < threads)
    split = std::min(nb, (threads + groups - 1) / groups);
  const int items = groups * split;
#pragma omp parallel for schedule(dynamic, 1) if (items > 1)
  for (int it = 0; it < items; ++it) {
    int g = it / split, part = it % split;
    int b0 = static_cast<int>(static_cast<int64_t>(nb) * part / split);
    int b1 = static_cast<int>(static_cast<int64_t>(nb) * (part + 1) / split);
    if (b1 > b0) e.run_group(a, plan, g, b0, b1);
  }
}

Isa flashconv_engine_isa(Isa level) { return level >= Isa::Avx512 ? Isa::Avx512 : level; }

void flashconv_fwd(const float* u, const float* K, const float* D, float* y, int B, int H, int L) {
  check_ptr(u, "u"), check_ptr(K, "K"), check_ptr(y, "y");
  fc::Args a;
  a.op = fc::Op::Fwd;
  a.u = u, a.K = K, a.D = D, a.y = y, a.B = B, a.H = H, a.L = L;
  fc::run(a);
}

void flashconv_bwd(const float* u, const float* K, const float* D, const float* dy, float* du,
                   float* dK, float* dD, int B, int H, int L) {
  check_ptr(u, "u"), check_ptr(K, "K"), check_ptr(dy, "dy"), check_ptr(du, "du");
  check_ptr(dK, "dK");
  HIPPO_CHECK(D == nullptr || dD != nullptr, "flashconv_bwd: 'dD' is null but D is given");
  fc::Args a;
  a.op = fc::Op::Bwd;
  a.u = u, a.K = K, a.D = D, a.dy = dy, a.du = du, a.dK = dK, a.dD = dD;
  a.B = B, a.H = H, a.L = L;
  fc::run(a);
}

void flashconv_h3_fwd(const float* q, const float* k, const float* v, const float* K,
                      const float* D, float* y, int B, int H, int L) {
  check_ptr(q, "q"), check_ptr(k, "k"), check_ptr(v, "v"), check_ptr(K, "K"), check_ptr(y, "y");
  fc::Args a;
  a.op = fc::Op::H3Fwd;
  a.q = q, a.k = k, a.v = v, a.K = K, a.D = D, a.y = y, a.B = B, a.H = H, a.L = L;
  fc::run(a);
}

void flashconv_h3_bwd(const float* q, const float* k, const float* v, const float* K,
                      const float* D, const float* dy, float* dq, float* dk, float* dv, float* dK,
                      float* dD, int B, int H, int L) {
  check_ptr(q, "q"), check_ptr(k, "k"), check_ptr(v, "v"), check_ptr(K, "K");
  check_ptr(dy, "dy"), check_ptr(dq, "dq"), check_ptr(dk, "dk"), check_ptr(dv, "dv");
  check_ptr(dK, "dK");
  HIPPO_CHECK(D == nullptr || dD != nullptr, "flashconv_h3_bwd: 'dD' is null but D is given");
  fc::Args a;
  a.op = fc::Op::H3Bwd;
  a.q = q, a.k = k, a.v = v, a.K = K, a.D = D, a.dy = dy;
  a.dq = dq, a.dk = dk, a.dv = dv, a.dK = dK, a.dD = dD;
  a.B = B, a.H = H, a.L = L;
  fc::run(a);
}

}  // namespace hippo
