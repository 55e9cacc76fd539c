#include "kernels/gemm.h"

#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <atomic>

#include "core/error.h"
#include "core/scratch.h"
#include "kernels/gemm_small.h"
#include "kernels/parallel_work.h"

namespace hippo {

namespace {

// Rows of A for which gemm() runs an N-wide "A B^T" product transposed (see below).
constexpr int64_t kFewRowsMin = 8, kFewRowsMax = 16, kWideMin = 256;

// C = alpha A B^T + beta C with a few rows of A against a wide B, the shape of every linear
// layer in batched decoding: oneDNN's kernel for it measured 1.3-1.7x slower (weights streamed
// from memory, M = 8 and 16, 768-3072 wide) than the same product with the operands swapped,
// C^T = B A^T, where the wide matrix is the M side. The (N, M) result is transposed into C.
void gemm_few_rows_nt(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                      const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  thread_local ScratchBuffer scratch;  // thread_local: callers may run gemm from parallel regions
  float* T = scratch.get(static_cast<size_t>(N * M));
  const dnnl_status_t st =
      dnnl_sgemm('N', 'T', N, M, K, alpha, B, ldb, A, lda, 0.0f, T, M);
  HIPPO_CHECK(st == dnnl_success, "oneDNN sgemm failed with status ", static_cast<int>(st),
              " for M=", N, " N=", M, " K=", K);
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.0f) {  // C may hold garbage (NaN) that beta * C must not propagate
      for (int64_t j = 0; j < N; ++j) c[j] = T[j * M + i];
    } else {
      for (int64_t j = 0; j < N; ++j) c[j] = T[j * M + i] + beta * c[j];
    }
  }
}

// Rows of C per thread from which gemm() splits the rows over the threads itself, and the most
// threads it does so for: measured at 2; every thread reads all of op(B), so on wider machines
// oneDNN's own two-dimensional partition is left alone (not measured here).
constexpr int64_t kSplitRowsPerThread = 256;
constexpr int kSplitMaxThreads = 4;

// C = alpha op(A) op(B) + beta C with C's rows split evenly over the threads (parallel_range
// over units of 16 rows), each slice one oneDNN call on its own thread: inside a parallel region
// oneDNN runs on the calling thread. On the 2-thread Zen 4 of session 16 oneDNN's own threading
// of the MLP's second product at 512-1024 rows (N 768, K 3072: a prefill block, a training
// batch) ran at 167 GFLOP/s, the split at 192-199; the model's other shapes at 512-4096 rows
// 0.97-1.06x (medians of 9, the two alternated). Each thread reads all of op(B), so the split
// is kept to at least kSplitRowsPerThread rows a thread.
void gemm_rows_split(char ta, char tb, int64_t M, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                     float* C, int64_t ldc) {
  std::atomic<int> failed{dnnl_success};
  parallel_range((M + 15) / 16, true, [&](int64_t b, int64_t e) {  // slices of 16-row units
    const int64_t m0 = 16 * b, m1 = std::min(M, 16 * e);
    const float* a = ta == 'N' ? A + m0 * lda : A + m0;  // row m0 of op(A)
    const dnnl_status_t st =
        dnnl_sgemm(ta, tb, m1 - m0, N, K, alpha, a, lda, B, ldb, beta, C + m0 * ldc, ldc);
    if (st != dnnl_success) failed = st;
  });
  HIPPO_CHECK(failed == dnnl_success, "oneDNN sgemm failed with status ", failed.load(),
              " for M=", M, " N=", N, " K=", K, " (rows split over the threads)");
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc) {
  if (M == 0 || N == 0) return;
  // Decoding's linear layers (one row per sequence): our kernel streams B once for all rows,
  // 1.3-1.4x oneDNN's bandwidth at 1 and 8 rows (kernels/gemm_small.h).
  if (!trans_a && trans_b && M <= kSmallRowsMax && small_rows_kernel_available()) {
    gemm_small_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (!trans_a && trans_b && M >= kFewRowsMin && M <= kFewRowsMax && N >= kWideMin && K > 0) {
    gemm_few_rows_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (nt >= 2 && nt <= kSplitMaxThreads && M >= kSplitRowsPerThread * nt && K > 0) {
    gemm_rows_split(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb,
                    beta, C, ldc);
    return;
  }
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
