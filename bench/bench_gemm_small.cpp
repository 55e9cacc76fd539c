// The small-rows kernel's two layouts for a few rows of fp32 weights (kernels/gemm_small.h):
// adjacent 8 x 2 tiles against the spread layout, weights streamed from memory (enough
// 64-byte aligned copies to overflow the caches, as in decoding), A and B alternating.
// Usage: bench_gemm_small [reps=7 [rows=8]]. GB/s of weights from the best of `reps` passes
// (process CPU time; run with OMP_NUM_THREADS=1).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "bench_timing.h"
#include "kernels/gemm_small.h"

using namespace hippo;

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;
  const int64_t rows = argc > 2 ? std::atoll(argv[2]) : 8;
  if (!small_rows_kernel_available() || rows < 1 || rows > kSmallRowsMax) {
    std::fprintf(stderr, "bench_gemm_small: needs AVX-512 and rows in [1, %lld]\n",
                 static_cast<long long>(kSmallRowsMax));
    return 2;
  }
  const int64_t shapes[][2] = {{768, 768}, {768, 3072}, {3072, 768}, {768, 50264}, {768, 256}};
  std::printf("%-12s %5s %12s %12s   (GB/s of weights, best of %d; spread taken: yes/no)\n",
              "in x out", "rows", "adjacent", "spread", reps);
  for (auto& s : shapes) {
    const int64_t K = s[0], N = s[1], n = K * N;
    const int copies = static_cast<int>(std::max<int64_t>(2, (int64_t{384} << 20) / (n * 4)));
    auto alloc = [](int64_t count) {
      return std::unique_ptr<float, decltype(&std::free)>(
          static_cast<float*>(std::aligned_alloc(64, (count * 4 + 63) / 64 * 64)), &std::free);
    };
    auto W = alloc(n * copies), x = alloc(rows * K), y = alloc(rows * N);
    for (int64_t i = 0; i < n * copies; ++i) W.get()[i] = static_cast<float>(i % 7) * 0.01f;
    for (int64_t i = 0; i < rows * K; ++i) x.get()[i] = 1.0f;
    auto pass = [&](bool spread) {
      set_small_rows_spread(spread);
      const double t0 = bench::cpu_now_ms();
      for (int c = 0; c < copies; ++c)
        gemm_small_nt(rows, N, K, 1.0f, x.get(), K, W.get() + c * n, K, 0.0f, y.get(), N);
      return (bench::cpu_now_ms() - t0) / copies;
    };
    pass(true);
    std::vector<double> a, b;
    for (int r = 0; r < reps; ++r) {
      a.push_back(pass(false));
      b.push_back(pass(true));
    }
    const double ga = n * 4 / *std::min_element(a.begin(), a.end()) / 1e6;
    const double gb = n * 4 / *std::min_element(b.begin(), b.end()) / 1e6;
    std::printf("%5lld x %-5lld %5lld %12.1f %12.1f   %s\n", static_cast<long long>(K),
                static_cast<long long>(N), static_cast<long long>(rows), ga, gb,
                small_rows_spread_for(rows, K, W.get(), K) ? "yes" : "no");
  }
  set_small_rows_spread(true);
  return 0;
}
