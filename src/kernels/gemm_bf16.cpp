#include "kernels/gemm_bf16.h"

// GCC 12's AVX-512 intrinsics start some results from an "undefined" register and the
// uninitialised-use warning fires inside the header when they are inlined into target("...")
// functions.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "core/buffer.h"
#include "core/error.h"
#include "kernels/bf16.h"
#include "kernels/gemm.h"
#include "kernels/gemm_small.h"

namespace hippo {

void f32_to_bf16(const float* x, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(x[i]);
}

void bf16_to_f32(const uint16_t* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(x[i]);
}

namespace {

// Below this many multiply-adds a call stays on one thread (a parallel region costs more).
constexpr int64_t kParallelWork = int64_t{1} << 20;
constexpr int64_t kChunk = 32;  // bf16 weights per 512-bit load

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// Grow-only per-thread scratch (decode calls this hundreds of times per token).
template <class T>
T* scratch(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

void store(float* y, float v, bool accumulate) { *y = accumulate ? *y + v : v; }

void gemv_scalar(const float* x, const uint16_t* W, float* y, int64_t rows, int64_t in,
                 int64_t out, bool accumulate) {
#pragma omp parallel for schedule(static) if (rows * in * out > kParallelWork)
  for (int64_t o = 0; o < out; ++o) {
    const uint16_t* w = W + o * in;
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * in;
      float acc = 0;
      for (int64_t i = 0; i < in; ++i) acc += bf16_to_f32(w[i]) * xr[i];
      store(y + r * out + o, acc, accumulate);
    }
  }
}

// ---- AVX-512F: widen W by a 16-bit shift, fp32 FMA ------------------------------------------
// A 512-bit load of 32 bf16 holds element 2j in the low and 2j+1 in the high half of 32-bit lane
// j: `w << 16` is the even elements as fp32, `w & 0xffff0000` the odd ones. x is rearranged once
// per call to match (per 32-chunk: its 16 even elements, then its 16 odd ones; zero padded).

#define HIPPO_AVX512 __attribute__((target("avx512f,avx512bw")))

HIPPO_AVX512 inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

HIPPO_AVX512 void split_even_odd(const float* x, float* xs, int64_t in) {
  const int64_t padded = round_up(in, kChunk);
  for (int64_t c = 0; c < padded; c += kChunk)
    for (int64_t j = 0; j < 16; ++j) {
      xs[c + j] = c + 2 * j < in ? x[c + 2 * j] : 0.0f;
      xs[c + 16 + j] = c + 2 * j + 1 < in ? x[c + 2 * j + 1] : 0.0f;
    }
}

// ---- AVX512_BF16: VDPBF16PS -------------------------------------------------------------------
// The instruction multiplies bf16 by bf16, so x is split into hi = bf16(x) and lo = bf16(x - hi)
// and both are multiplied: x is then carried to about 2^-17 relative, close to fp32 (x alone in
// bf16 would be 2^-9). Products of two bf16 are exact in fp32.

#define HIPPO_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

void split_hi_lo(const float* x, uint16_t* hi, uint16_t* lo, int64_t in) {
  const int64_t padded = round_up(in, kChunk);
  for (int64_t i = 0; i < padded; ++i) {
    const float v = i < in ? x[i] : 0.0f;
    hi[i] = f32_to_bf16(v);
    lo[i] = f32_to_bf16(v - bf16_to_f32(hi[i]));
  }
}

template <int R, int OT>
HIPPO_AVX512BF16 void tile_dpbf16(const uint16_t* xh, const uint16_t* xl, int64_t xs_stride,
                                  const uint16_t* W, int64_t in, float* y, int64_t out,
                                  bool accumulate) {
  __m512 acc[R][OT];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < OT; ++t) acc[r][t] = _mm512_setzero_ps();
  auto body = [&](int64_t c, __mmask32 m) HIPPO_AVX512BF16 {
    __m512bh w[OT];
    for (int t = 0; t < OT; ++t) w[t] = (__m512bh)_mm512_maskz_loadu_epi16(m, W + t * in + c);
    for (int r = 0; r < R; ++r) {
      const __m512bh h = (__m512bh)_mm512_loadu_si512(xh + r * xs_stride + c);
      const __m512bh l = (__m512bh)_mm512_loadu_si512(xl + r * xs_stride + c);
      for (int t = 0; t < OT; ++t) {
        acc[r][t] = _mm512_dpbf16_ps(acc[r][t], w[t], h);
        acc[r][t] = _mm512_dpbf16_ps(acc[r][t], w[t], l);
      }
    }
  };
  const int64_t full = in / kChunk * kChunk;
  for (int64_t c = 0; c < full; c += kChunk) body(c, ~__mmask32{0});
  if (full < in) body(full, (__mmask32{1} << (in - full)) - 1);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < OT; ++t) store(y + r * out + t, hsum(acc[r][t]), accumulate);
}

// Runs tiles over all outputs and rows: outputs in tiles of OT (8 for a single row, where more
// independent weight streams help, else 4), rows in groups of up to 4, the weight tile reused
// from cache by every group.
template <class Tile>
void run_tiles(int64_t rows, int64_t in, int64_t out, Tile tile) {
  const int64_t ot = rows == 1 ? 8 : 4;
  const int64_t tiles = (out + ot - 1) / ot;
#pragma omp parallel for schedule(static) if (rows * in * out > kParallelWork)
  for (int64_t ti = 0; ti < tiles; ++ti) {
    const int64_t o0 = ti * ot, n = std::min(ot, out - o0);
    for (int64_t r0 = 0; r0 < rows; r0 += 4) tile(r0, std::min<int64_t>(4, rows - r0), o0, n);
  }
}

// Instantiates tile functions for r in 1..4 rows and OT in {8, 4, 1} outputs.
template <template <int, int> class K, class... Args>
void dispatch_tile(int64_t r, int64_t n, Args... args) {
  auto go = [&](auto R) {
    constexpr int kR = decltype(R)::value;
    if (n == 8) return K<kR, 8>::run(args...);
    if (n == 4) return K<kR, 4>::run(args...);
    for (int64_t t = 0; t < n; ++t) K<kR, 1>::run_offset(t, args...);
  };
  switch (r) {
    case 1: go(std::integral_constant<int, 1>{}); break;
    case 2: go(std::integral_constant<int, 2>{}); break;
    case 3: go(std::integral_constant<int, 3>{}); break;
    default: go(std::integral_constant<int, 4>{}); break;
  }
}

template <int R, int OT>
struct DpTile {
  static void run(const uint16_t* xh, const uint16_t* xl, int64_t st, const uint16_t* W,
                  int64_t in, float* y, int64_t out, bool acc) {
    tile_dpbf16<R, OT>(xh, xl, st, W, in, y, out, acc);
  }
  static void run_offset(int64_t t, const uint16_t* xh, const uint16_t* xl, int64_t st,
                         const uint16_t* W, int64_t in, float* y, int64_t out, bool acc) {
    tile_dpbf16<R, OT>(xh, xl, st, W + t * in, in, y + t, out, acc);
  }
};

void gemv_avx512(const float* x, const uint16_t* W, float* y, int64_t rows, int64_t in,
                 int64_t out, bool accumulate) {
  thread_local Buffer buf;  // 64-byte aligned: split loads halve the kernel's speed in cache
  const int64_t st = round_up(in, kChunk);
  float* xs = buf.get(static_cast<size_t>(rows * st));
  for (int64_t r = 0; r < rows; ++r) split_even_odd(x + r * in, xs + r * st, in);
  for (int64_t r = 0; r < rows; r += kSmallRowsMax)  // the kernel takes 16 rows at a time
    gemm_small_nt_bf16_split(std::min(kSmallRowsMax, rows - r), out, in, xs + r * st, st, W, in,
                             accumulate ? 1.0f : 0.0f, y + r * out, out);
}

void gemv_avx512bf16(const float* x, const uint16_t* W, float* y, int64_t rows, int64_t in,
                     int64_t out, bool accumulate) {
  thread_local Buffer buf;  // 64-byte aligned: split loads halve the kernel's speed in cache
  const int64_t st = round_up(in, kChunk);
  uint16_t* xh = reinterpret_cast<uint16_t*>(buf.get(static_cast<size_t>(rows * st)));
  uint16_t* xl = xh + rows * st;
  for (int64_t r = 0; r < rows; ++r) split_hi_lo(x + r * in, xh + r * st, xl + r * st, in);
  run_tiles(rows, in, out, [&](int64_t r0, int64_t nr, int64_t o0, int64_t n) {
    dispatch_tile<DpTile>(nr, n, xh + r0 * st, xl + r0 * st, st, W + o0 * in, in,
                          y + r0 * out + o0, out, accumulate);
  });
}

Bf16Isa best_isa() {
  // The shift+FMA path runs on the small-rows kernel (kernels/gemm_small.h): on this Zen 5
  // (bench/bench_gemm_bf16.cpp, weights streamed) it read the weights as fast as VDPBF16PS at
  // one row (23-27 against 22-29 GB/s) and faster at 8 rows (7.2 against 6.3 GB/s), and in
  // cache 1.4x faster (154 against 111 GFLOP/s at 8 rows). VDPBF16PS stays selectable.
  static const Bf16Isa best = bf16_isa_available(Bf16Isa::Avx512)       ? Bf16Isa::Avx512
                              : bf16_isa_available(Bf16Isa::Avx512Bf16) ? Bf16Isa::Avx512Bf16
                                                                        : Bf16Isa::Scalar;
  return best;
}

}  // namespace

bool bf16_isa_available(Bf16Isa isa) {
  switch (isa) {
    case Bf16Isa::Auto:
    case Bf16Isa::Scalar: return true;
    case Bf16Isa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq");
    case Bf16Isa::Avx512Bf16:
      return bf16_isa_available(Bf16Isa::Avx512) && __builtin_cpu_supports("avx512bf16");
  }
  return false;
}

const char* bf16_isa_name(Bf16Isa isa) {
  switch (isa) {
    case Bf16Isa::Auto: return "auto";
    case Bf16Isa::Scalar: return "scalar";
    case Bf16Isa::Avx512: return "avx512";
    case Bf16Isa::Avx512Bf16: return "avx512_bf16";
  }
  return "?";
}

void matmul_xwt_bf16_gemv(const float* x, const uint16_t* W, float* y, int64_t rows, int64_t in,
                          int64_t out, bool accumulate, Bf16Isa isa) {
  if (isa == Bf16Isa::Auto) isa = best_isa();
  HIPPO_CHECK(bf16_isa_available(isa), "bf16 matmul: this CPU lacks the ", bf16_isa_name(isa),
              " instructions");
  if (rows <= 0 || out <= 0) return;
  if (in <= 0) {
    if (!accumulate) std::fill(y, y + rows * out, 0.0f);
    return;
  }
  switch (isa) {
    case Bf16Isa::Avx512: return gemv_avx512(x, W, y, rows, in, out, accumulate);
    case Bf16Isa::Avx512Bf16: return gemv_avx512bf16(x, W, y, rows, in, out, accumulate);
    default: return gemv_scalar(x, W, y, rows, in, out, accumulate);
  }
}

void matmul_xwt_bf16_blocked(const float* x, const uint16_t* W, float* y, int64_t rows,
                             int64_t in, int64_t out, bool accumulate) {
  if (rows <= 0 || out <= 0) return;
  // Blocks of about 4 MiB of widened weights (they stay in L3 while the GEMM reuses them). With
  // 1 MiB blocks, narrow blocks (85 outputs at in = 3072) put oneDNN on a path 2-4x slower.
  constexpr int64_t kBlockFloats = int64_t{1} << 20;
  const int64_t nb = std::min(out, std::max<int64_t>(64, kBlockFloats / std::max<int64_t>(in, 1)));
  thread_local std::vector<float> buf;
  float* w = scratch(buf, static_cast<size_t>(nb * in));
  for (int64_t o0 = 0; o0 < out; o0 += nb) {
    const int64_t n = std::min(nb, out - o0);
    const uint16_t* src = W + o0 * in;
#pragma omp parallel for schedule(static) if (n * in > kParallelWork / 4)
    for (int64_t i = 0; i < n * in; ++i) w[i] = bf16_to_f32(src[i]);
    gemm(false, true, rows, n, in, 1.0f, x, in, w, in, accumulate ? 1.0f : 0.0f, y + o0, out);
  }
}

namespace {
std::atomic<Bf16Activations> g_activations{Bf16Activations::Exact};
}  // namespace

void set_bf16_activations(Bf16Activations mode) { g_activations.store(mode); }
Bf16Activations bf16_activations() { return g_activations.load(std::memory_order_relaxed); }

void matmul_xwt_bf16_rounded_x(const float* x, const uint16_t* W, float* y, int64_t rows,
                               int64_t in, int64_t out, bool accumulate) {
  HIPPO_CHECK(small_rows_bf16_dot_available(),
              "bf16 matmul with rounded activations: this CPU lacks AVX512_BF16");
  if (rows <= 0 || out <= 0) return;
  if (in <= 0) {
    if (!accumulate) std::fill(y, y + rows * out, 0.0f);
    return;
  }
  thread_local Buffer buf;  // 64-byte aligned rows of bf16, zero padded to 32
  const int64_t st = round_up(in, kChunk);
  uint16_t* xb = reinterpret_cast<uint16_t*>(buf.get(static_cast<size_t>(rows * st / 2 + 16)));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < st; ++i) xb[r * st + i] = i < in ? f32_to_bf16(x[r * in + i]) : 0;
  for (int64_t r = 0; r < rows; r += kSmallRowsMax)  // the kernel takes 16 rows at a time
    gemm_small_nt_bf16_dot(std::min(kSmallRowsMax, rows - r), out, in, xb + r * st, st, W, in,
                           accumulate ? 1.0f : 0.0f, y + r * out, out);
}

void matmul_xwt_bf16(const float* x, const uint16_t* W, float* y, int64_t rows, int64_t in,
                     int64_t out, bool accumulate) {
  if (rows <= kBf16GemvRows && bf16_activations() == Bf16Activations::RoundedToBf16 &&
      small_rows_bf16_dot_available())
    matmul_xwt_bf16_rounded_x(x, W, y, rows, in, out, accumulate);
  else if (rows <= kBf16GemvRows)
    matmul_xwt_bf16_gemv(x, W, y, rows, in, out, accumulate, Bf16Isa::Auto);
  else
    matmul_xwt_bf16_blocked(x, W, y, rows, in, out, accumulate);
}

void matmul_xwt_bf16_ref(const float* x, const uint16_t* W, float* y, int64_t rows, int64_t in,
                         int64_t out, bool accumulate) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = accumulate ? y[r * out + o] : 0.0;
      for (int64_t i = 0; i < in; ++i)
        acc += static_cast<double>(bf16_to_f32(W[o * in + i])) * x[r * in + i];
      y[r * out + o] = static_cast<float>(acc);
    }
}

}  // namespace hippo
