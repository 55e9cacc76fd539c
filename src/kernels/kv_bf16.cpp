#include "kernels/kv_bf16.h"

#include <algorithm>

#include "core/bf16.h"

// GCC 12's AVX-512 intrinsics start some results from an "undefined" register and the
// uninitialised-use warning fires inside the header (as in gemm_small.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "core/cpu_features.h"
#include "kernels/kv_avx512.h"

namespace hippo {

void kv_bf16_scores_portable(const float* q, const uint16_t* K, int64_t n, int dh, float scale,
                             float* s) {
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t* kj = K + j * dh;
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int i = 0; i < dh; ++i) acc += q[i] * bf16_to_f32(kj[i]);
    s[j] = acc * scale;
  }
}

void kv_bf16_weighted_sum_portable(const float* p, const uint16_t* V, int64_t n, int dh, float* o) {
  std::fill(o, o + dh, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t* vj = V + j * dh;
#pragma omp simd
    for (int i = 0; i < dh; ++i) o[i] += p[j] * bf16_to_f32(vj[i]);
  }
}

// The AVX-512 paths where active_isa() allows them (chosen at run time, so a portable build
// takes them too; until session 15 this was a compile-time choice).
void kv_bf16_scores(const float* q, const uint16_t* K, int64_t n, int dh, float scale, float* s) {
  if (active_isa() >= Isa::Avx512 && dh % 16 == 0 && dh <= 256)
    return kv_avx512::scores(q, K, nullptr, n, dh, scale, s);
  kv_bf16_scores_portable(q, K, n, dh, scale, s);
}

void kv_bf16_weighted_sum(const float* p, const uint16_t* V, int64_t n, int dh, float* o) {
  if (active_isa() >= Isa::Avx512 && dh % 16 == 0)
    return kv_avx512::weighted_sum(p, V, nullptr, n, dh, o);
  kv_bf16_weighted_sum_portable(p, V, n, dh, o);
}

}  // namespace hippo
