// Thread-local kernel scratch (core/scratch.h): the registry counts what every thread holds,
// release_thread_scratch() gives all of it back (the OpenMP pool threads' too), and the kernels
// compute the same results after a release as before it.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "core/cpu_features.h"
#include "core/rng.h"
#include "core/scratch.h"
#include "core/threads.h"
#include "core/bf16.h"
#include "kernels/fft_conv.h"
#include "kernels/flashconv/flashconv.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "ssm/s4d.h"

namespace hippo {
namespace {

std::vector<float> randn(size_t n, Rng& rng) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.normal());
  return v;
}

// Runs every kernel that keeps thread-local scratch and returns all their outputs, concatenated.
std::vector<float> run_kernels() {
  Rng rng(11);
  std::vector<float> all;
  auto keep = [&](const std::vector<float>& v) { all.insert(all.end(), v.begin(), v.end()); };
  {  // bf16 products: the decoding rows (split x) and the blocked widening for prompts
    const int64_t in = 200, out = 300;
    for (int64_t rows : {4, 40}) {
      const std::vector<float> x = randn(rows * in, rng), w = randn(out * in, rng);
      std::vector<uint16_t> W(w.size());
      f32_to_bf16(w.data(), W.data(), static_cast<int64_t>(w.size()));
      std::vector<float> y(rows * out);
      matmul_xwt_bf16(x.data(), W.data(), y.data(), rows, in, out);
      keep(y);
    }
  }
  {  // gemm's few-rows path transposes through scratch (below the small-rows kernel's level)
    ScopedIsa oneDnn(Isa::Avx2);
    const int64_t M = 8, N = 300, K = 64;
    const std::vector<float> A = randn(M * K, rng), B = randn(N * K, rng);
    std::vector<float> C(M * N);
    gemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C.data(), N);
    keep(C);
  }
  {  // FlashConv engine, FFTW convolution, S4D kernel (chunked powers)
    const int B = 2, H = 20, L = 300;
    const size_t n = static_cast<size_t>(B) * H * L;
    const std::vector<float> u = randn(n, rng), K = randn(static_cast<size_t>(H) * L, rng),
                             D = randn(H, rng);
    std::vector<float> y(n), y2(n);
    flashconv_fwd(u.data(), K.data(), D.data(), y.data(), B, H, L);
    fft_causal_conv(u.data(), K.data(), y2.data(), B, H, L);
    keep(y);
    keep(y2);
    S4DKernel s4d(H, 16);
    s4d.init(rng);
    std::vector<float> Ks(static_cast<size_t>(H) * L);
    s4d.kernel(Ks.data(), L);
    keep(Ks);
  }
  return all;
}

}  // namespace

TEST(Scratch, ReleaseReturnsEveryThreadsMemoryAndResultsStayEqual) {
  const int saved = num_threads();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    release_thread_scratch();
    ASSERT_EQ(thread_scratch_bytes(), 0u);
    const std::vector<float> first = run_kernels();
    EXPECT_GT(thread_scratch_bytes(), 0u) << "the kernels keep scratch between calls";
    const size_t warm = thread_scratch_bytes();
    EXPECT_EQ(run_kernels(), first);
    // (With 2 threads the dynamic schedules may hand work to the thread that had less.)
    if (threads == 1) {
      EXPECT_EQ(thread_scratch_bytes(), warm) << "warm scratch does not grow";
    }
    release_thread_scratch();
    EXPECT_EQ(thread_scratch_bytes(), 0u) << threads << " threads";
    EXPECT_EQ(run_kernels(), first) << "results after a release";
  }
  set_num_threads(saved);
  release_thread_scratch();
}

TEST(Scratch, ThreadExitFreesItsBuffers) {
  release_thread_scratch();
  std::thread t([] {
    thread_local ScratchBuffer b;
    float* p = b.get(1000);
    p[999] = 1.0f;
    EXPECT_GE(thread_scratch_bytes(), 4000u);
  });
  t.join();
  EXPECT_EQ(thread_scratch_bytes(), 0u);
}

TEST(Scratch, BufferIsAlignedZeroedAndGrowOnly) {
  ScratchBuffer b;
  float* p = b.get(10);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(p[i], 0.0f);
  p[3] = 5.0f;
  EXPECT_EQ(b.get(8), p) << "no growth: same memory, contents kept";
  EXPECT_EQ(p[3], 5.0f);
  b.release();
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_NE(b.get(4), nullptr);
}

}  // namespace hippo
