// Token embedding lookup: row i of the output is row ids[i] of E (V, d).
#pragma once
#include <cstdint>

#include "core/weight.h"

namespace hippo {

// ids: (n); E: (V, d); y: (n, d). An id outside [0, V) is a hippo::Error naming it and V.
void embedding_forward(const int32_t* ids, const float* E, float* y, int64_t n, int64_t V,
                       int64_t d);
// Same with E stored as bf16 (inference), row-major or its first E.rows8 rows in the Rows8
// order (core/weight.h; d a multiple of 32 then).
void embedding_forward_bf16(const int32_t* ids, Bf16Data E, float* y, int64_t n, int64_t V,
                            int64_t d);
// dE (V, d) += scatter of dy (n, d) by ids (repeated ids add up).
void embedding_backward(const int32_t* ids, const float* dy, float* dE, int64_t n, int64_t V,
                        int64_t d);

}  // namespace hippo
