// Batch-1 decoding kernels over the 125M hybrid's matrices in one process (issue 18, session
// 16): the q8 kernel (Rows4, bf16 scales: what decoding runs where AVX512-VNNI is) against the
// bf16 kernel (Rows8) and against plain streaming reads of the same bytes, the memory limit a
// kernel can reach. Each matrix on 2 MiB pages; the passes of a round run in an order rotated
// every round (a pass reads its bytes from DRAM: the whole set is over 130 MB). Prints median
// times and GB/s and the medians of the per-round ratios.
// Usage: q8_kernel_ab [ROUNDS=60]   (1 thread: OMP_NUM_THREADS=1)
// GCC 12's AVX-512 intrinsics start some results from an "undefined" register and the
// uninitialised-use warning fires inside the header when they are inlined.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

#include "bench_timing.h"
#include "core/bf16.h"
#include "kernels/gemm_bf16.h"
#include "kernels/gemm_q8.h"
#include "kernels/q8_layout.h"

using namespace hippo;
using hippo::bench::median;

namespace {

struct Region {
  char* next;
  char* take(size_t n) {
    char* p = next;
    next += (n + 63) & ~size_t{63};
    return p;
  }
};

Region region(size_t n) {
  n = (n + (2u << 20)) & ~size_t((2u << 20) - 1);
  char* p = static_cast<char*>(aligned_alloc(2u << 20, n));
  if (!p) {
    std::fprintf(stderr, "q8_kernel_ab: out of memory\n");
    std::exit(1);
  }
  madvise(p, n, MADV_HUGEPAGE);
  return {p};
}

// Sums 64-byte loads over [p, p + n) (n a multiple of 256): the bytes' streaming read.
__attribute__((target("avx512f"))) __m512i stream(const char* p, int64_t n, __m512i acc) {
  for (int64_t i = 0; i < n; i += 256)
    for (int k = 0; k < 4; ++k)
      acc = _mm512_add_epi32(acc, _mm512_load_si512(p + i + 64 * k));
  return acc;
}

__attribute__((target("avx512f"))) int fold(__m512i v) { return _mm512_reduce_add_epi32(v); }

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 60;
  if (rounds < 1) {
    std::fprintf(stderr, "q8_kernel_ab: ROUNDS must be a positive integer\n");
    return 2;
  }
  if (!isa_enabled(Isa::Avx512) || q8_dot_path(active_isa()) != Q8DotPath::Avx512Vnni) {
    std::fprintf(stderr, "q8_kernel_ab: needs AVX512-VNNI (this CPU takes the %s q8 path)\n",
                 q8_dot_path_name(q8_dot_path(active_isa())));
    return 2;
  }
  std::vector<std::pair<int64_t, int64_t>> shapes;  // (out, in)
  for (int l = 0; l < 12; ++l)
    for (auto s : {std::pair<int64_t, int64_t>{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}})
      shapes.push_back(s);
  shapes.push_back({50304, 768});
  size_t q8_total = 0, bf16_total = 0;
  for (auto [r, c] : shapes) {
    q8_total += r * c + r * c / 32 * 2 + 128;
    bf16_total += r * c * 2 + 64;
  }
  Region rq = region(q8_total), rb = region(bf16_total);
  struct Q8 { WeightView v; int64_t value_bytes, scale_bytes; };
  struct Bf { const uint16_t* w; int64_t rows, cols; };
  std::vector<Q8> q8s;
  std::vector<Bf> bfs;
  double q8_bytes = 0, bf16_bytes = 0;
  std::mt19937 g(1);
  std::normal_distribution<float> nd(0, 0.02f);
  for (auto [r, c] : shapes) {
    std::vector<float> w(static_cast<size_t>(r * c));
    for (auto& x : w) x = nd(g);
    std::vector<int8_t> q(w.size());
    std::vector<float> s(w.size() / 32);
    quantize_q8_weights(w.data(), r, c, q.data(), s.data());
    auto* qv = reinterpret_cast<int8_t*>(rq.take(r * c));
    auto* qs = reinterpret_cast<uint16_t*>(rq.take(r * c / 32 * 2));
    q8s.push_back({q8_relayout(q.data(), s.data(), r, c, Q8Layout::Rows4, qv, nullptr, qs), r * c,
                   (r * c / 32 * 2 + 255) / 256 * 256});
    q8_bytes += static_cast<double>(r * c + r * c / 32 * 2);
    auto* bw = reinterpret_cast<uint16_t*>(rb.take(r * c * 2));
    for (int64_t o = 0; o < r; ++o)
      for (int64_t i = 0; i < c; ++i)
        bw[bf16_offset(o, i, c, r / 8 * 8)] = f32_to_bf16(w[o * c + i]);
    bfs.push_back({bw, r, c});
    bf16_bytes += static_cast<double>(r * c * 2);
  }
  std::vector<float> x(3072), y(50304);
  for (auto& e : x) e = nd(g);
  std::vector<int8_t> xq(3072);
  std::vector<float> xs(96);
  int sink = 0;
  auto timed = [](auto&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  std::vector<std::function<double()>> pass = {
      [&] {
        return timed([&] {
          for (const Q8& m : q8s) {
            quantize_q8(x.data(), 1, m.v.cols, xq.data(), xs.data());
            q8_dot_rows(xq.data(), xs.data(), 1, m.v, y.data(), m.v.rows, 0, m.v.rows, false,
                        active_isa());
          }
        });
      },
      [&] {
        return timed([&] {
          for (const Bf& m : bfs)
            matmul_xwt_bf16_part(x.data(), Bf16Data(m.w, m.rows / 8 * 8), y.data(), 1, m.cols,
                                 m.rows, false, bf16_activations(), 0, m.rows);
        });
      },
      [&] {
        return timed([&] {
          __m512i acc = _mm512_setzero_si512();
          for (const Q8& m : q8s) {
            acc = stream(static_cast<const char*>(m.v.data), m.value_bytes, acc);
            acc = stream(reinterpret_cast<const char*>(m.v.scales_bf16), m.scale_bytes, acc);
          }
          sink += fold(acc);
        });
      },
      [&] {
        return timed([&] {
          __m512i acc = _mm512_setzero_si512();
          for (const Bf& m : bfs)
            acc = stream(reinterpret_cast<const char*>(m.w), m.rows * m.cols * 2, acc);
          sink += fold(acc);
        });
      }};
  const char* names[] = {"q8 kernel", "bf16 kernel", "q8 bytes streamed", "bf16 bytes streamed"};
  const double bytes[] = {q8_bytes, bf16_bytes, q8_bytes, bf16_bytes};
  std::vector<double> t[4], bf16_q8, q8_of_stream, bf16_of_stream;
  for (int i = 0; i < rounds; ++i) {
    double r[4];
    for (size_t k = 0; k < 4; ++k) {
      const size_t j = (k + static_cast<size_t>(i)) % 4;
      r[j] = pass[j]();
      t[j].push_back(r[j]);
    }
    bf16_q8.push_back(r[1] / r[0]);
    q8_of_stream.push_back(r[2] / r[0]);
    bf16_of_stream.push_back(r[3] / r[1]);
  }
  std::printf("q8 kernel path %s, %d rounds, q8 %.1f MB, bf16 %.1f MB (checksum %d)\n",
              q8_dot_path_name(q8_dot_path(active_isa())), rounds, q8_bytes / 1e6,
              bf16_bytes / 1e6, sink & 1);
  for (int k = 0; k < 4; ++k)
    std::printf("%-20s median %.3f ms, %.1f GB/s\n", names[k], median(t[k]) * 1e3,
                bytes[k] / median(t[k]) / 1e9);
  std::printf("per round, medians: bf16 kernel / q8 kernel time %.3f; q8 kernel at %.3f of its "
              "bytes' streaming read, bf16 kernel at %.3f\n",
              median(bf16_q8), median(q8_of_stream), median(bf16_of_stream));
}
