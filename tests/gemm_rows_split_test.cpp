// With two or more threads and at least 256 rows a thread, gemm() splits C's rows over the
// threads itself (one oneDNN call per slice, kernels/gemm.cpp). Every transpose combination,
// slices that do not end on a multiple of 16, leading dimensions wider than the matrices, alpha,
// beta = 0 over garbage and beta != 0 must equal the triple-loop reference, and the rows must
// come out as a single-threaded call gives them.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/rng.h"
#include "kernels/gemm.h"

using namespace hippo;

namespace {

struct Threads {
  int before = omp_get_max_threads();
  explicit Threads(int n) { omp_set_num_threads(n); }
  ~Threads() { omp_set_num_threads(before); }
};

struct Case {
  bool ta, tb;
  int64_t M, N, K;
  float beta;
};

// C (M x ldc) from gemm() on `threads` threads, the padding columns kept (NaN or the start).
std::vector<float> run(const Case& c, int threads, const std::vector<float>& A, int64_t lda,
                       const std::vector<float>& B, int64_t ldb, const std::vector<float>& C0,
                       int64_t ldc) {
  const Threads scope(threads);
  std::vector<float> C = C0;
  gemm(c.ta, c.tb, c.M, c.N, c.K, 0.7f, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
  return C;
}

void check(Rng& rng, const Case& c) {
  // op(A) is M x K: stored M x lda (not transposed) or K x lda (transposed); op(B) K x N alike.
  const int64_t lda = (c.ta ? c.M : c.K) + 3, ldb = (c.tb ? c.K : c.N) + 5, ldc = c.N + 7;
  std::vector<float> A((c.ta ? c.K : c.M) * lda), B((c.tb ? c.N : c.K) * ldb), C0(c.M * ldc);
  for (auto& v : A) v = static_cast<float>(rng.normal());
  for (auto& v : B) v = static_cast<float>(rng.normal());
  for (auto& v : C0)
    v = c.beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(rng.normal());
  std::vector<float> R = C0;
  gemm_ref(c.ta, c.tb, c.M, c.N, c.K, 0.7f, A.data(), lda, B.data(), ldb, c.beta, R.data(), ldc);
  const std::vector<float> one = run(c, 1, A, lda, B, ldb, C0, ldc);
  for (int threads : {2, 3}) {
    const std::vector<float> got = run(c, threads, A, lda, B, ldb, C0, ldc);
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        const float g = got[i * ldc + j], r = R[i * ldc + j];
        const auto where = testing::Message()
                           << "ta=" << c.ta << " tb=" << c.tb << " M=" << c.M << " N=" << c.N
                           << " K=" << c.K << " beta=" << c.beta << " threads=" << threads
                           << " at " << i << "," << j;
        if (j >= c.N) {  // padding between rows stays untouched
          if (c.beta == 0.0f) ASSERT_TRUE(std::isnan(g)) << where;
          else ASSERT_EQ(g, C0[i * ldc + j]) << where;
          continue;
        }
        ASSERT_NEAR(g, r, 1e-4f * (1 + std::abs(r))) << where;
        ASSERT_NEAR(g, one[i * ldc + j], 1e-5f * (1 + std::abs(r))) << where;
      }
  }
}

}  // namespace

TEST(GemmRowsSplit, EveryTransposeMatchesTheReferenceOnSeveralThreads) {
  Rng rng(77);
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t M : {511, 512, 773, 1031})  // below the split on 2 threads, and above
        for (float beta : {0.0f, 0.5f}) check(rng, {ta, tb, M, 19, 37, beta});
}

TEST(GemmRowsSplit, InsideAParallelRegionEachCallRunsWhole) {
  // A call from a parallel region must not split again (nor deadlock): four products at once.
  Rng rng(5);
  const int64_t M = 600, N = 11, K = 13;
  std::vector<float> A(M * K), B(N * K);
  for (auto& v : A) v = static_cast<float>(rng.normal());
  for (auto& v : B) v = static_cast<float>(rng.normal());
  std::vector<float> R(M * N);
  gemm_ref(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, R.data(), N);
  std::vector<std::vector<float>> C(4, std::vector<float>(M * N));
  const Threads scope(2);
#pragma omp parallel for num_threads(2)
  for (int i = 0; i < 4; ++i)
    gemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C[i].data(), N);
  for (const auto& c : C)
    for (int64_t i = 0; i < M * N; ++i) ASSERT_NEAR(c[i], R[i], 1e-4f * (1 + std::abs(R[i]))) << i;
}
