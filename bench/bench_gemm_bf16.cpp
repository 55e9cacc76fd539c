// y = x W^T with bf16 weights against the fp32 GEMM, on the 125M model's shapes, with weights
// streamed from memory (enough copies of W to overflow the caches, as in decoding).
// Usage: bench_gemm_bf16 [reps [rows]]. Process CPU time (1 thread: OMP_NUM_THREADS=1), medians.
#include <dnnl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "core/bf16.h"
#include "core/rng.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/gemm_small.h"

using namespace hippo;

// Median CPU ms per call of f(copy), cycling over `copies` weight copies.
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

// 64-byte aligned storage, as the model's tensors and buffers have: unaligned rows make every
// 512-bit load span two cache lines (the small-rows kernels ran at half speed in cache).
template <class T>
struct Aligned {
  explicit Aligned(size_t n) : n_(n), p_(static_cast<T*>(std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64))) {}
  ~Aligned() { std::free(p_); }
  Aligned(const Aligned&) = delete;
  Aligned& operator=(const Aligned&) = delete;
  T* data() { return p_; }
  size_t size() const { return n_; }
  T* begin() { return p_; }
  T* end() { return p_ + n_; }

 private:
  size_t n_;
  T* p_;
};

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 5;
  const int64_t shapes[][2] = {{768, 768}, {768, 3072}, {3072, 768}, {768, 50264}};
  std::printf("%-12s %5s %10s %10s %10s %10s %10s %10s %10s   (ms per call; GB/s of weights)\n",
              "in x out", "rows", "fp32 dnnl", "fp32 small", "bf16 auto", "avx512", "avx512bf16",
              "blocked", "scalar");
  for (auto& s : shapes) {
    const int64_t in = s[0], out = s[1], n = in * out;
    const int copies = static_cast<int>(std::max<int64_t>(1, (int64_t{384} << 20) / (n * 4)));
    Rng rng(1);
    Aligned<float> W32(n * copies);
    for (auto& v : W32) v = static_cast<float>(rng.normal() * 0.05);
    Aligned<uint16_t> W16(W32.size());
    f32_to_bf16(W32.data(), W16.data(), static_cast<int64_t>(W32.size()));
    const int64_t only = argc > 2 ? std::atoll(argv[2]) : 0;  // one rows count, if given
    for (int64_t rows : {1, 8, 16, 32, 512}) {
      if (only && rows != only) continue;
      Aligned<float> x(rows * in), y(rows * out);
      for (auto& v : x) v = static_cast<float>(rng.normal());
      const int c = rows >= 32 ? std::max(1, copies / 8) : copies;
      const int rp = rows >= 512 ? std::max(1, reps / 2) : reps;
      auto t = [&](const std::function<void(int)>& f) { return median_ms(rp, c, f); };
      auto dnnl = [&](int k) {  // oneDNN itself (gemm() sends few rows to our kernel)
        dnnl_sgemm('N', 'T', rows, out, in, 1.0f, x.data(), in, W32.data() + k * n, in, 0.0f,
                   y.data(), out);
      };
      const double f32 = t(dnnl);
      const double sm = rows <= kSmallRowsMax && small_rows_kernel_available()
                            ? t([&](int k) {
                                matmul_xwt_small(x.data(), W32.data() + k * n, y.data(), rows, in,
                                                 out, false);
                              })
                            : -1.0;
      const double aut = t([&](int k) { matmul_xwt_bf16(x.data(), W16.data() + k * n, y.data(), rows, in, out); });
      auto isa = [&](Isa i) {
        if (!isa_enabled(i) || (rows > 16 && i == Isa::Scalar)) return -1.0;
        return t([&](int k) {
          matmul_xwt_bf16_gemv(x.data(), W16.data() + k * n, y.data(), rows, in, out, false, i);
        });
      };
      const double a5 = isa(Isa::Avx512), ab = isa(Isa::Avx512Bf16);
      const double bl = t([&](int k) {
        matmul_xwt_bf16_blocked(x.data(), W16.data() + k * n, y.data(), rows, in, out, false);
      });
      const double sc = rows <= 1 ? isa(Isa::Scalar) : -1.0;
      std::printf("%5lld x %-5lld %5lld %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f\n",
                  static_cast<long long>(in), static_cast<long long>(out),
                  static_cast<long long>(rows), f32, sm, aut, a5, ab, bl, sc);
      auto gbs = [&](double ms, int bytes) { return ms > 0 ? n * bytes / ms / 1e6 : 0.0; };
      if (rows <= kSmallRowsMax)
        std::printf("%18s %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f\n", "GB/s",
                    gbs(f32, 4), gbs(sm, 4), gbs(aut, 2), gbs(a5, 2), gbs(ab, 2), gbs(bl, 2),
                    gbs(sc, 2));
    }
  }
  return 0;
}
