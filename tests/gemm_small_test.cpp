// The small-rows kernel (decoding's linear layers) against the double-precision triple loop:
// every rows count it takes, output counts around its tile and block widths, input lengths
// around its vector width and its chunking, alpha/beta, padded leading dimensions, unaligned
// pointers, beta = 0 over garbage, and several threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/gemm.h"
#include "kernels/gemm_small.h"

using namespace hippo;

namespace {

// Checks C = alpha A B^T + beta C for one shape; `offset` floats shift every operand off the
// 64-byte alignment.
void check(Rng& rng, int64_t M, int64_t N, int64_t K, float alpha, float beta, int64_t pad,
           int64_t offset) {
  const int64_t lda = K + pad, ldb = K + 2 * pad, ldc = N + 3 * pad;
  std::vector<float> A(M * lda + offset), B(N * ldb + offset), C(M * ldc + offset),
      R(M * ldc + offset);
  for (auto& v : A) v = static_cast<float>(rng.normal());
  for (auto& v : B) v = static_cast<float>(rng.normal());
  for (size_t i = 0; i < C.size(); ++i)
    C[i] = R[i] = beta == 0.0f ? std::numeric_limits<float>::quiet_NaN()
                               : static_cast<float>(rng.normal());
  gemm_small_nt(M, N, K, alpha, A.data() + offset, lda, B.data() + offset, ldb, beta,
                C.data() + offset, ldc);
  gemm_ref(false, true, M, N, K, alpha, A.data() + offset, lda, B.data() + offset, ldb, beta,
           R.data() + offset, ldc);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const float c = C[offset + i * ldc + j], r = R[offset + i * ldc + j];
      if (j >= N) {  // padding between rows stays untouched
        if (beta == 0.0f) ASSERT_TRUE(std::isnan(c)) << "wrote past N at row " << i;
        else ASSERT_EQ(c, r);
        continue;
      }
      // Sums of K products of unit normals: error grows like sqrt(K) * eps * magnitude.
      ASSERT_NEAR(c, r, 2e-6f * std::sqrt(static_cast<float>(K) + 1) * (4 + std::abs(r)))
          << "M=" << M << " N=" << N << " K=" << K << " alpha=" << alpha << " beta=" << beta
          << " pad=" << pad << " offset=" << offset << " at " << i << "," << j;
    }
}

}  // namespace

TEST(GemmSmall, EveryRowsCountMatchesReference) {
  if (!small_rows_kernel_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  Rng rng(61);
  for (int64_t M = 1; M <= kSmallRowsMax; ++M)
    for (int64_t N : {1, 7, 8, 9, 47, 48, 49, 101})
      for (int64_t K : {1, 15, 16, 17, 100}) check(rng, M, N, K, 1.0f, 0.0f, 0, 0);
}

TEST(GemmSmall, LongInputsAreChunked) {
  if (!small_rows_kernel_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  Rng rng(62);
  // 8 rows take chunks of 1024 inputs, 16 rows of 512, 1 row of 8192: lengths on and off the
  // chunk boundaries.
  for (int64_t M : {1, 3, 8, 16})
    for (int64_t K : {511, 512, 513, 1024, 3072, 3083, 8193}) check(rng, M, 50, K, 1.0f, 1.0f, 0, 0);
}

TEST(GemmSmall, AlphaBetaStridesAndAlignment) {
  if (!small_rows_kernel_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  Rng rng(63);
  for (int64_t M : {1, 2, 4, 5, 8, 13})
    for (float alpha : {1.0f, -0.7f})
      for (float beta : {0.0f, 1.0f, 0.5f})
        for (int64_t pad : {0, 5})
          for (int64_t offset : {0, 1, 3}) check(rng, M, 61, 37, alpha, beta, pad, offset);
}

TEST(GemmSmall, ThreadsSplitTheOutputs) {
  if (!small_rows_kernel_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  Rng rng(64);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(2);
  // Large enough to pass the per-token parallel threshold (kernels/parallel_work.h).
  for (int64_t M : {1, 8}) check(rng, M, 3000, 768, 1.0f, 0.0f, 0, 0);
  omp_set_num_threads(saved);
}

TEST(GemmSmall, GemmRoutesFewRowsHere) {
  if (!small_rows_kernel_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  // gemm() with few rows and B transposed must give what the kernel gives, bit for bit.
  Rng rng(65);
  const int64_t M = 8, N = 200, K = 300;
  std::vector<float> A(M * K), B(N * K), C1(M * N), C2(M * N);
  for (auto& v : A) v = static_cast<float>(rng.normal());
  for (auto& v : B) v = static_cast<float>(rng.normal());
  gemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C1.data(), N);
  gemm_small_nt(M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C2.data(), N);
  for (int64_t i = 0; i < M * N; ++i) ASSERT_EQ(C1[i], C2[i]) << i;
}

TEST(GemmSmall, SpreadLayoutMatchesAdjacentTilesBitForBit) {
  if (!small_rows_kernel_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  // The spread layout (5-8 rows, K <= 1024, aligned weights) against the double-precision
  // loop, and bit for bit against the adjacent tiles it replaces (the same sums in the same
  // order), on output counts around its eight parts and 48-output groups, with alpha/beta, on
  // one and two threads (each thread spreads its own range).
  ASSERT_TRUE(small_rows_spread());
  Rng rng(66);
  const int saved = omp_get_max_threads();
  auto aligned = [](int64_t n) {
    return std::unique_ptr<float, decltype(&std::free)>(
        static_cast<float*>(std::aligned_alloc(64, (n * 4 + 63) / 64 * 64)), &std::free);
  };
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    for (int64_t M : {5, 6, 7, 8})
      for (int64_t N : {7, 8, 9, 63, 385, 3000})
        for (int64_t K : {16, 48, 768, 1024}) {
          if (N == 3000 && K != 768) continue;
          const float alpha = N == 385 ? -0.5f : 1.0f, beta = N == 385 ? 0.5f : 0.0f;
          auto A = aligned(M * K), B = aligned(N * K);
          std::vector<float> C0(M * N), C1, C2, R;
          for (int64_t i = 0; i < M * K; ++i) A.get()[i] = static_cast<float>(rng.normal());
          for (int64_t i = 0; i < N * K; ++i) B.get()[i] = static_cast<float>(rng.normal());
          for (auto& v : C0) v = static_cast<float>(rng.normal());
          ASSERT_TRUE(small_rows_spread_for(M, K, B.get(), K)) << M << " " << K;
          C1 = C2 = R = C0;
          gemm_small_nt(M, N, K, alpha, A.get(), K, B.get(), K, beta, C1.data(), N);
          set_small_rows_spread(false);
          ASSERT_FALSE(small_rows_spread_for(M, K, B.get(), K));
          gemm_small_nt(M, N, K, alpha, A.get(), K, B.get(), K, beta, C2.data(), N);
          set_small_rows_spread(true);
          gemm_ref(false, true, M, N, K, alpha, A.get(), K, B.get(), K, beta, R.data(), N);
          for (int64_t i = 0; i < M * N; ++i) {
            ASSERT_EQ(C1[i], C2[i]) << "M=" << M << " N=" << N << " K=" << K << " at " << i;
            ASSERT_NEAR(C1[i], R[i], 2e-6f * std::sqrt(static_cast<float>(K) + 1) * (4 + std::abs(R[i])))
                << "M=" << M << " N=" << N << " K=" << K << " at " << i;
          }
        }
  }
  omp_set_num_threads(saved);
  // Not taken: rows 24 bytes off a cache line (files from before the aligned data section),
  // 4 or 9 rows, more than 1024 inputs.
  auto B = aligned(8 * 2048 + 64);
  EXPECT_FALSE(small_rows_spread_for(8, 768, B.get() + 6, 768));
  EXPECT_FALSE(small_rows_spread_for(4, 768, B.get(), 768));
  EXPECT_FALSE(small_rows_spread_for(9, 768, B.get(), 768));
  EXPECT_FALSE(small_rows_spread_for(8, 2048, B.get(), 2048));
  EXPECT_FALSE(small_rows_spread_for(8, 770, B.get(), 770));
}

TEST(GemmSmall, OutputRangesFromOneParallelRegionEqualTheWholeCall) {
  if (!small_rows_kernel_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  // gemm_small_nt_part: the building block of one parallel region per decoding step (each
  // thread takes a range of outputs, no fork per product). Ranges from two threads in one
  // region, and uneven serial splits, give the whole call's result bit for bit; a bad range is
  // refused.
  Rng rng(67);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(2);
  for (int64_t M : {1, 3, 8, 16})
    for (int64_t N : {1, 50, 769})
      for (int64_t K : {17, 768, 3072}) {
        std::vector<float> A(M * K), B(N * K), whole(M * N), parts(M * N), serial(M * N);
        for (auto& v : A) v = static_cast<float>(rng.normal());
        for (auto& v : B) v = static_cast<float>(rng.normal());
        gemm_small_nt(M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, whole.data(), N);
#pragma omp parallel
        {
          const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
          gemm_small_nt_part(M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, parts.data(), N,
                             N * t / nt, N * (t + 1) / nt);
        }
        for (int64_t b = 0; b < N;) {  // ranges of 1, 2, 4, ... outputs
          const int64_t e = std::min(N, b + std::max<int64_t>(1, b));
          gemm_small_nt_part(M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, serial.data(), N, b, e);
          b = e;
        }
        for (int64_t i = 0; i < M * N; ++i) {
          ASSERT_EQ(parts[i], whole[i]) << "M=" << M << " N=" << N << " K=" << K << " at " << i;
          ASSERT_EQ(serial[i], whole[i]) << "M=" << M << " N=" << N << " K=" << K << " at " << i;
        }
      }
  omp_set_num_threads(saved);
  std::vector<float> A(8), B(8), C(8);
  EXPECT_THROW(gemm_small_nt_part(1, 8, 1, 1.0f, A.data(), 1, B.data(), 1, 0.0f, C.data(), 8, 3, 9),
               Error);
  EXPECT_THROW(gemm_small_nt_part(1, 8, 1, 1.0f, A.data(), 1, B.data(), 1, 0.0f, C.data(), 8, 4, 2),
               Error);
}
