#include "kernels/gemm.h"

#include <dnnl.h>

#include "core/error.h"

namespace hippo {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc) {
  if (M == 0 || N == 0) return;
  dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda,
                                B, ldb, beta, C, ldc);
  HIPPO_CHECK(st == dnnl_success, "oneDNN sgemm failed with status ", static_cast<int>(st),
              " for M=", M, " N=", N, " K=", K);
}

void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
              int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        double a = trans_a ? A[k * lda + i] : A[i * lda + k];
        double b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      double prev = beta == 0.0f ? 0.0 : static_cast<double>(beta) * C[i * ldc + j];
      C[i * ldc + j] = static_cast<float>(alpha * acc + prev);
    }
}

void matmul_xwt(const float* x, const float* W, float* y, int64_t rows, int64_t in, int64_t out,
                bool accumulate) {
  gemm(false, true, rows, out, in, 1.0f, x, in, W, in, accumulate ? 1.0f : 0.0f, y, out);
}

}  // namespace hippo
