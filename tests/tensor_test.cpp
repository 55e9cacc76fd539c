#include <gtest/gtest.h>

#include "core/error.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/gemm.h"

using namespace hippo;

TEST(Tensor, SliceAndViewShareStorage) {
  Tensor t = Tensor::zeros({2, 3, 4});
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(i);
  Tensor s = t.slice(1, 1, 3);
  EXPECT_EQ(s.shape(), (Shape{2, 2, 4}));
  EXPECT_FALSE(s.contiguous());
  EXPECT_EQ(s.at({1, 0, 2}), t.at({1, 1, 2}));
  s.at({0, 0, 0}) = -1;
  EXPECT_EQ(t.at({0, 1, 0}), -1);
  Tensor c = s.clone();
  EXPECT_TRUE(c.contiguous());
  EXPECT_EQ(c.at({1, 1, 3}), t.at({1, 2, 3}));
  EXPECT_THROW(t.view({5, 5}), Error);
  EXPECT_THROW(t.at({2, 0, 0}), Error);
}

TEST(Rng, SameSeedSameStream) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
  EXPECT_NE(Rng(42).next_u64(), c.next_u64());
  double sum = 0, sq = 0;
  Rng r(7);
  for (int i = 0; i < 20000; ++i) {
    double x = r.normal();
    sum += x;
    sq += x * x;
  }
  EXPECT_NEAR(sum / 20000, 0.0, 0.03);
  EXPECT_NEAR(sq / 20000, 1.0, 0.05);
}

TEST(Gemm, MatchesReferenceAllTransposes) {
  Rng rng(3);
  const int64_t M = 37, N = 29, K = 53;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      std::vector<float> A(M * K), B(K * N), C(M * N), R(M * N);
      for (auto& v : A) v = static_cast<float>(rng.normal());
      for (auto& v : B) v = static_cast<float>(rng.normal());
      for (size_t i = 0; i < C.size(); ++i) C[i] = R[i] = static_cast<float>(rng.normal());
      int64_t lda = ta ? M : K, ldb = tb ? K : N;
      gemm(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 2.0f, C.data(), N);
      gemm_ref(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 2.0f, R.data(), N);
      for (size_t i = 0; i < C.size(); ++i) ASSERT_NEAR(C[i], R[i], 1e-4f * (1 + std::abs(R[i])));
    }
}
