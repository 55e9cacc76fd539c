// Attention over an int8 KV cache (issue 18, session 15): each cached key and value row (one
// head's head_dim values of one token) as int8 with one fp32 scale, amax / 127 (1 + 4 / dh bytes
// per value: 1.06 at head_dim 64, against 2 for bf16), widened to fp32 in registers; q, the
// scores, the softmax and the context stay fp32. As llama.cpp's q8_0 KV cache, for long
// contexts, where the cache is what a decode step reads most.
#pragma once
#include <cstdint>

namespace hippo {

// q[0, dh) = x / s rounded to nearest (ties to even), s = max |x| / 127: |q| <= 127. A zero row
// gets s = 0; a row holding NaN or Inf gets s = NaN (so that its scores come out NaN, as fp32's
// would) and q = 0.
void kv_q8_quantize_row(const float* x, int dh, int8_t* q, float* s);

// s[j] = scale * ks[j] * sum_i q[i] * K[j * dh + i] for j < n (K: n rows of dh int8 values).
void kv_q8_scores(const float* q, const int8_t* K, const float* ks, int64_t n, int dh, float scale,
                  float* s);

// o[i] = sum_{j < n} (p[j] * vs[j]) * V[j * dh + i] for i < dh (o is overwritten), in order of j.
void kv_q8_weighted_sum(const float* p, const int8_t* V, const float* vs, int64_t n, int dh,
                        float* o);

// The portable loops of both (the fast paths' fallback where AVX-512 does not run or dh is not
// a multiple of 16); tests hold both to a double-precision loop on the same int8 values.
void kv_q8_scores_portable(const float* q, const int8_t* K, const float* ks, int64_t n, int dh,
                           float scale, float* s);
void kv_q8_weighted_sum_portable(const float* p, const int8_t* V, const float* vs, int64_t n,
                                 int dh, float* o);

}  // namespace hippo
