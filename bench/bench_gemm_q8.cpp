// Decoding's y = x W^T with q8 weights (kernels/gemm_q8.h) against bf16's small-rows kernel, on
// the 125M model's shapes, weights streamed from memory (copies of W overflow the caches).
// Usage: bench_gemm_q8 [reps [rows [hot]]]. Process CPU time (1 thread: OMP_NUM_THREADS=1),
// medians; GB/s counts the bytes of weights read (q8: int8 + fp32 scales). `hot`: one copy of W,
// called repeatedly, so the weights come from the caches where they fit (the kernels' compute
// rate, without waiting on memory). Columns: bf16's small-rows kernel, q8 at the active level,
// q8 at avx2 (the AVX-VNNI path where the CPU has it) and q8's portable loop.
#include <sys/mman.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
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
  const size_t bytes = (n * sizeof(T) + (2u << 20) - 1) / (2u << 20) * (2u << 20);
  void* p = std::aligned_alloc(2u << 20, bytes);
  if (std::getenv("HUGE")) madvise(p, bytes, MADV_HUGEPAGE);
  return static_cast<T*>(p);
}

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 5;
  const int64_t rows = argc > 2 ? std::atoi(argv[2]) : 1;
  const bool hot = argc > 3 && std::string(argv[3]) == "hot";
  const int64_t shapes[][2] = {{768, 768}, {768, 3072}, {3072, 768}, {768, 50304}};
  std::printf("%s; q8 kernel at the active level %s: %s, at avx2: %s\n",
              hot ? "hot (weights from the caches where they fit)" : "weights streamed from memory",
              isa_name(active_isa()), q8_dot_path_name(q8_dot_path(active_isa())),
              q8_dot_path_name(q8_dot_path(Isa::Avx2)));
  std::printf("%-12s %5s %10s %10s %10s %12s %20s\n", "in x out", "rows", "bf16 ms", "q8 ms",
              "q8 avx2 ms", "q8 scalar ms", "GB/s bf16/q8/q8avx2");
  for (auto& s : shapes) {
    const int64_t in = s[0], out = s[1], n = in * out;
    const int copies =
        hot ? 1 : static_cast<int>(std::max<int64_t>(1, (int64_t{256} << 20) / (2 * n)));
    const int calls = hot ? static_cast<int>(std::max<int64_t>(4, (int64_t{64} << 20) / n)) : copies;
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
    const double tb = median_ms(reps, calls, [&](int c) {
      matmul_xwt_bf16(x.data(), wb + (c % copies) * n, y.data(), rows, in, out);
    });
    const double tq = median_ms(reps, calls, [&](int c) {
      matmul_xwt_q8_gemv(x.data(), rows, view(c % copies), y.data(), false, active_isa());
    });
    const double ta = isa_enabled(Isa::Avx2) ? median_ms(reps, calls, [&](int c) {
      matmul_xwt_q8_gemv(x.data(), rows, view(c % copies), y.data(), false, Isa::Avx2);
    }) : 0.0;
    const double ts = median_ms(std::max(1, reps / 2), std::min(calls, 4), [&](int c) {
      matmul_xwt_q8_gemv(x.data(), rows, view(c % copies), y.data(), false, Isa::Scalar);
    });
    const double q8_bytes = n + n / kQ8Block * 4.0;
    std::printf("%5lldx%-6lld %5lld %10.3f %10.3f %10.3f %12.3f %6.1f/%5.1f/%5.1f\n",
                static_cast<long long>(in), static_cast<long long>(out),
                static_cast<long long>(rows), tb, tq, ta, ts, 2.0 * n / tb / 1e6,
                q8_bytes / tq / 1e6, ta > 0 ? q8_bytes / ta / 1e6 : 0.0);
    std::free(wb);
    std::free(wq);
    std::free(ws);
  }
  return 0;
}
