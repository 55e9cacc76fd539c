// Decoding's y = x W^T with q8 weights (kernels/gemm_q8.h) against bf16's small-rows kernel, on
// the 125M model's shapes, weights streamed from memory (copies of W overflow the caches).
// Usage: bench_gemm_q8 [reps [rows]]. Process CPU time (1 thread: OMP_NUM_THREADS=1), medians;
// GB/s counts the bytes of weights read (q8: int8 + fp32 scales).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "bench_timing.h"
#include "core/bf16.h"
#include "core/rng.h"
#include "kernels/gemm_bf16.h"
#include "kernels/gemm_q8.h"

using namespace hippo;

static double median_ms(int reps, int copies, const std::function<void(int)>& f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const double t0 = bench::cpu_now_ms();
    for (int c = 0; c < copies; ++c) f(c);
    t.push_back((bench::cpu_now_ms() - t0) / copies);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

template <class T>
T* aligned(size_t n) {
  return static_cast<T*>(std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64));
}

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 5;
  const int64_t rows = argc > 2 ? std::atoi(argv[2]) : 1;
  const int64_t shapes[][2] = {{768, 768}, {768, 3072}, {3072, 768}, {768, 50304}};
  std::printf("%-12s %5s %12s %12s %12s %12s\n", "in x out", "rows", "bf16 ms", "q8 ms",
              "q8 scalar ms", "bf16/q8 GB/s");
  for (auto& s : shapes) {
    const int64_t in = s[0], out = s[1], n = in * out;
    const int copies = static_cast<int>(std::max<int64_t>(1, (int64_t{256} << 20) / (2 * n)));
    Rng rng(1);
    std::vector<float> w32(static_cast<size_t>(n)), x(static_cast<size_t>(rows * in));
    for (auto& v : w32) v = 0.02f * static_cast<float>(rng.normal());
    for (auto& v : x) v = static_cast<float>(rng.normal());
    auto* wb = aligned<uint16_t>(static_cast<size_t>(n * copies));
    auto* wq = aligned<int8_t>(static_cast<size_t>(n * copies));
    auto* ws = aligned<float>(static_cast<size_t>(n / kQ8Block * copies));
    for (int c = 0; c < copies; ++c) {
      f32_to_bf16(w32.data(), wb + c * n, n);
      quantize_q8(w32.data(), out, in, wq + c * n, ws + c * (n / kQ8Block));
    }
    std::vector<float> y(static_cast<size_t>(rows * out));
    auto view = [&](int c) {
      return WeightView{DType::Q8, wq + c * n, out, in, ws + c * (n / kQ8Block)};
    };
    const double tb = median_ms(reps, copies, [&](int c) {
      matmul_xwt_bf16(x.data(), wb + c * n, y.data(), rows, in, out);
    });
    const double tq = median_ms(reps, copies, [&](int c) {
      matmul_xwt_q8_gemv(x.data(), rows, view(c), y.data(), false, active_isa());
    });
    const double ts = median_ms(std::max(1, reps / 2), std::min(copies, 4), [&](int c) {
      matmul_xwt_q8_gemv(x.data(), rows, view(c), y.data(), false, Isa::Scalar);
    });
    std::printf("%5lldx%-6lld %5lld %12.3f %12.3f %12.3f %6.1f/%5.1f\n",
                static_cast<long long>(in), static_cast<long long>(out),
                static_cast<long long>(rows), tb, tq, ts, 2.0 * n / tb / 1e6,
                (n + n / kQ8Block * 4.0) / tq / 1e6);
    std::free(wb);
    std::free(wq);
    std::free(ws);
  }
  return 0;
}
