// Attention over a bf16 KV cache (issue 18): keys and values stored as bf16 (half the bytes
// of fp32, the part of a long-context decode step that grows with the context), widened
// exactly to fp32 in registers; q, the scores, the softmax and the context stay fp32. The
// query is not rounded (AVX-512 BF16's VDPBF16PS would round it to bf16 too): widening is one
// shift per 16 values and the loop is bound by the cache's bytes, not by the arithmetic.
#pragma once
#include <cstdint>

namespace hippo {

// s[j] = scale * sum_i q[i] * K[j * dh + i] for j < n (K: n rows of dh bf16 values).
void kv_bf16_scores(const float* q, const uint16_t* K, int64_t n, int dh, float scale, float* s);

// o[i] = sum_{j < n} p[j] * V[j * dh + i] for i < dh (o is overwritten), summed in order of j.
void kv_bf16_weighted_sum(const float* p, const uint16_t* V, int64_t n, int dh, float* o);

// The portable loops of both (the fast path's fallback when dh is not a multiple of 16 or
// active_isa() is below AVX-512); tests hold both to a double-precision loop on the same bf16
// values.
void kv_bf16_scores_portable(const float* q, const uint16_t* K, int64_t n, int dh, float scale,
                             float* s);
void kv_bf16_weighted_sum_portable(const float* p, const uint16_t* V, int64_t n, int dh, float* o);

}  // namespace hippo
