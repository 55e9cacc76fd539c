// Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C,
// op(A) is M x K, op(B) is K x N. Backed by oneDNN (see docs/design.md for why).
#pragma once
#include <cstdint>

namespace hippo {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc);

// gemm() sends products with at most 16 rows to the small-rows kernel (kernels/gemm_small.h)
// where active_isa() enables AVX-512; below that level (set_isa_override, HIPPO_ISA) they take
// oneDNN's paths, which dispatch on the CPU themselves.

// Triple loop in double precision: the obviously-correct reference the tests compare with.
void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
              int64_t ldc);

// Common shapes for layers. x: (rows, in), W: (out, in) as in PyTorch's Linear.
// y = x W^T (+ y if accumulate)
void matmul_xwt(const float* x, const float* W, float* y, int64_t rows, int64_t in, int64_t out,
                bool accumulate = false);

}  // namespace hippo
