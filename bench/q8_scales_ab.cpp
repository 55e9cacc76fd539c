// q8 scales as fp32 or bf16 (issue 18, session 14), in one process: the 125M hybrid's q8
// matrices (12 layers of 2304x768 (q, k, v together), 768x768, 3072x768, 768x3072, and the
// 50304x768 head; random weights, quantize_q8_weights) in Rows4 with fp32 scales (A) and with
// bf16 scales (B), each set on its own 2 MiB pages, batch-1 passes (quantize x, q8_dot_rows over
// every matrix) alternated A B A B. Prints median pass times, GB/s of weight bytes and the
// median per-pair time ratio.
// Usage: q8_scales_ab [PAIRS=60]   (1 thread: OMP_NUM_THREADS=1)
#include "kernels/gemm_q8.h"
#include "kernels/q8_layout.h"
#include <sys/mman.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
using namespace hippo;
struct Set { std::vector<WeightView> v; double bytes = 0; };
static char* region(size_t n) {
  n = (n + (2u << 20)) & ~size_t((2u << 20) - 1);
  char* p = (char*)aligned_alloc(2u << 20, n);
  if (!p) {
    std::fprintf(stderr, "q8_scales_ab: out of memory\n");
    std::exit(1);
  }
  madvise(p, n, MADV_HUGEPAGE);
  return p;
}
int main(int argc, char** argv) {
  const int reps = argc > 1 ? atoi(argv[1]) : 60;
  if (reps < 1) {
    std::fprintf(stderr, "q8_scales_ab: PAIRS must be a positive integer\n");
    return 2;
  }
  std::printf("q8 kernel: %s\n", q8_dot_path_name(q8_dot_path(active_isa())));
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (int l = 0; l < 12; ++l) {
    shapes.push_back({2304, 768}); shapes.push_back({768, 768});
    shapes.push_back({3072, 768}); shapes.push_back({768, 3072});
  }
  shapes.push_back({50304, 768});
  size_t tot = 0;
  for (auto [r, c] : shapes) tot += r * c + r * c / 32 * 4 + 256;
  char* pa = region(tot); char* pb = region(tot);
  Set A, B;
  std::mt19937 g(1); std::normal_distribution<float> nd(0, 0.02f);
  for (auto [r, c] : shapes) {
    std::vector<float> w(r * c); for (auto& x : w) x = nd(g);
    std::vector<int8_t> q(r * c); std::vector<float> s(r * c / 32);
    quantize_q8_weights(w.data(), r, c, q.data(), s.data());
    auto up = [](char* p) { return (char*)(((uintptr_t)p + 63) & ~uintptr_t(63)); };
    int8_t* qa = (int8_t*)pa; pa = up(pa + r * c); float* sa = (float*)pa; pa = up(pa + r * c / 32 * 4);
    A.v.push_back(q8_relayout(q.data(), s.data(), r, c, Q8Layout::Rows4, qa, sa));
    A.bytes += r * c + r * c / 32 * 4;
    int8_t* qb = (int8_t*)pb; pb = up(pb + r * c); uint16_t* sb = (uint16_t*)pb; pb = up(pb + r * c / 32 * 2);
    B.v.push_back(q8_relayout(q.data(), s.data(), r, c, Q8Layout::Rows4, qb, nullptr, sb));
    B.bytes += r * c + r * c / 32 * 2;
  }
  std::vector<float> x(3072), y(50304); for (auto& e : x) e = nd(g);
  std::vector<int8_t> xq(3072); std::vector<float> xs(96);
  auto pass = [&](const Set& S) {
    auto t0 = std::chrono::steady_clock::now();
    for (const WeightView& m : S.v) {
      quantize_q8(x.data(), 1, m.cols, xq.data(), xs.data());
      q8_dot_rows(xq.data(), xs.data(), 1, m, y.data(), m.rows, 0, m.rows, false, active_isa());
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  std::vector<double> ta, tb, ratio;
  for (int i = 0; i < reps; ++i) {
    const double a = pass(A), b = pass(B);
    ta.push_back(a); tb.push_back(b); ratio.push_back(a / b);
  }
  auto med = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; };
  std::printf("fp32 scales %.1f MB: median %.3f ms (%.1f GB/s); bf16 scales %.1f MB: median %.3f ms (%.1f GB/s); "
              "median per-pair time ratio fp32/bf16 %.3f (byte ratio %.3f)\n",
              A.bytes / 1e6, med(ta) * 1e3, A.bytes / med(ta) / 1e9, B.bytes / 1e6, med(tb) * 1e3,
              B.bytes / med(tb) / 1e9, med(ratio), A.bytes / B.bytes);
}
