// Without AVX-512, gemm() runs "A B^T" products with a few rows of A against a wide B (batched
// decoding's linear layers) through a transposed oneDNN call; it must still equal the
// triple-loop reference, including leading dimensions wider than the matrices, alpha, beta = 0
// over garbage, and calls from inside a parallel region. The tests switch the small-rows
// kernel off so that this path runs on any CPU (the kernel has tests/gemm_small_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu_features.h"
#include "core/rng.h"
#include "kernels/gemm.h"

using namespace hippo;

namespace {

void check_shape(Rng& rng, int64_t M, int64_t N, int64_t K, float beta) {
  const int64_t lda = K + 3, ldb = K + 5, ldc = N + 7;
  std::vector<float> A(M * lda), B(N * ldb), C(M * ldc), R(M * ldc);
  for (auto& v : A) v = static_cast<float>(rng.normal());
  for (auto& v : B) v = static_cast<float>(rng.normal());
  for (size_t i = 0; i < C.size(); ++i)
    C[i] = R[i] = beta == 0.0f ? std::numeric_limits<float>::quiet_NaN()
                               : static_cast<float>(rng.normal());
  gemm(false, true, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  gemm_ref(false, true, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, beta, R.data(), ldc);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const float c = C[i * ldc + j], r = R[i * ldc + j];
      if (j >= N) {  // padding between rows stays untouched
        if (beta == 0.0f) ASSERT_TRUE(std::isnan(c)) << "wrote past N at row " << i;
        else ASSERT_EQ(c, r);
        continue;
      }
      ASSERT_NEAR(c, r, 1e-4f * (1 + std::abs(r)))
          << "M=" << M << " N=" << N << " K=" << K << " beta=" << beta << " at " << i << "," << j;
    }
}

}  // namespace

namespace {
// Switches the small-rows kernel off for one test: below the Avx512 level gemm() takes oneDNN.
struct OneDnnPaths {
  ScopedIsa below_avx512{Isa::Avx2};
};
}  // namespace

TEST(GemmFewRows, MatchesReference) {
  const OneDnnPaths scope;
  Rng rng(51);
  for (int64_t M : {7, 8, 12, 16, 17})  // 7 and 17 take the ordinary path
    for (int64_t N : {255, 256, 300})
      for (int64_t K : {1, 70})
        for (float beta : {0.0f, 1.0f, 0.5f}) check_shape(rng, M, N, K, beta);
}

TEST(GemmFewRows, InsideParallelRegion) {
  const OneDnnPaths scope;
  const int64_t M = 8, N = 512, K = 33;
  std::vector<float> A(M * K), B(N * K);
  Rng rng(52);
  for (auto& v : A) v = static_cast<float>(rng.normal());
  for (auto& v : B) v = static_cast<float>(rng.normal());
  std::vector<float> R(M * N);
  gemm_ref(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, R.data(), N);
  std::vector<std::vector<float>> C(4, std::vector<float>(M * N));
#pragma omp parallel for num_threads(2)
  for (int t = 0; t < 4; ++t)
    gemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C[t].data(), N);
  for (int t = 0; t < 4; ++t)
    for (int64_t i = 0; i < M * N; ++i) ASSERT_NEAR(C[t][i], R[i], 1e-4f * (1 + std::abs(R[i])));
}
