// GCC 12's AVX-512 intrinsics start some results from an "undefined" register and the
// uninitialised-use warning fires inside the header when they are inlined.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/kv_q8.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/cpu_features.h"
#include "kernels/kv_avx512.h"

namespace hippo {

void kv_q8_quantize_row(const float* x, int dh, int8_t* q, float* s) {
  float amax = 0, poison = 0;
  for (int i = 0; i < dh; ++i) {
    amax = std::max(amax, std::fabs(x[i]));
    poison += x[i] * 0.0f;  // NaN when any element is NaN or Inf
  }
  if (poison != 0.0f || std::isnan(poison)) {
    *s = std::numeric_limits<float>::quiet_NaN();
    std::fill(q, q + dh, int8_t{0});
    return;
  }
  if (amax == 0.0f) {
    *s = 0.0f;
    std::fill(q, q + dh, int8_t{0});
    return;
  }
  *s = amax / 127.0f;
  const float inv = 127.0f / amax;
  for (int i = 0; i < dh; ++i)
    q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * inv), -127.0f, 127.0f));
}

void kv_q8_scores_portable(const float* q, const int8_t* K, const float* ks, int64_t n, int dh,
                           float scale, float* s) {
  for (int64_t j = 0; j < n; ++j) {
    const int8_t* kj = K + j * dh;
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int i = 0; i < dh; ++i) acc += q[i] * static_cast<float>(kj[i]);
    s[j] = acc * (ks[j] * scale);
  }
}

void kv_q8_weighted_sum_portable(const float* p, const int8_t* V, const float* vs, int64_t n,
                                 int dh, float* o) {
  std::fill(o, o + dh, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    const int8_t* vj = V + j * dh;
    const float w = p[j] * vs[j];
#pragma omp simd
    for (int i = 0; i < dh; ++i) o[i] += w * static_cast<float>(vj[i]);
  }
}

void kv_q8_scores(const float* q, const int8_t* K, const float* ks, int64_t n, int dh, float scale,
                  float* s) {
  if (active_isa() >= Isa::Avx512 && dh % 16 == 0 && dh <= 256)
    return kv_avx512::scores(q, K, ks, n, dh, scale, s);
  kv_q8_scores_portable(q, K, ks, n, dh, scale, s);
}

void kv_q8_weighted_sum(const float* p, const int8_t* V, const float* vs, int64_t n, int dh,
                        float* o) {
  if (active_isa() >= Isa::Avx512 && dh % 16 == 0) return kv_avx512::weighted_sum(p, V, vs, n, dh, o);
  kv_q8_weighted_sum_portable(p, V, vs, n, dh, o);
}

}  // namespace hippo
