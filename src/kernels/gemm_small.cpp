#include "kernels/gemm_small.h"

// GCC 12's AVX-512 intrinsics start some results from an "undefined" register and the
// uninitialised-use warning fires inside the header when they are inlined into target("...")
// functions.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "core/cpu_features.h"
#include "core/error.h"
#include "kernels/parallel_work.h"

namespace hippo {

namespace {

// avx512bf16 is enabled for the whole file for the VDPBF16PS policy; only that policy emits
// those instructions, and it runs only where the CPU has them (small_rows_bf16_dot_available).
#define HIPPO_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512bf16")))

// [a.q0+a.q2, a.q1+a.q3, b.q0+b.q2, b.q1+b.q3] for pairs (a, b); q = 128-bit quarter.
// (Functions, not lambdas: a lambda's function-pointer thunk does not get the target attribute,
// and GCC warns of the ABI of its AVX-512 return in a baseline x86-64 build.)
HIPPO_AVX512 inline __m512 fold(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
}
// Quarters of (a, b), (c, d) folded again: quarter j holds 4 partial sums of vector j.
HIPPO_AVX512 inline __m512 fold4(__m512 ab, __m512 cd) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
}

// The sums of eight vectors, as lanes of one: lane 4j holds the sum of v[j] and lane 4j + 1
// that of v[j + 4] (j < 4). 23 shuffles and adds instead of 8 separate reductions (~80).
HIPPO_AVX512 inline __m512 sum8(const __m512 v[8]) {
  const __m512 u = fold4(fold(v[0], v[1]), fold(v[2], v[3]));
  const __m512 w = fold4(fold(v[4], v[5]), fold(v[6], v[7]));
  const __m512 s = _mm512_add_ps(_mm512_unpacklo_ps(u, w), _mm512_unpackhi_ps(u, w));
  return _mm512_add_ps(s, _mm512_permute_ps(s, 0x4E));
}

// Operands of one call: C = alpha A B^T + beta C with A (M x K, rows lda apart), B (N x K, rows
// ldb apart), C (M x N, rows ldc apart), element types from the policy WT.
template <class WT>
struct Operands {
  const typename WT::X* A;
  int64_t lda;
  const typename WT::T* B;
  int64_t ldb;
  float* C;
  int64_t ldc;
  float alpha;
  int64_t r8 = 0;  // bf16: B's rows below r8 are in the Rows8 order (core/weight.h)
};

// How a tile reads B and A, per weight element type.
// fp32: 16 weights per step, one vector; A as is.
struct F32Weights {
  using T = float;
  using X = float;
  using Mask = __mmask16;
  static constexpr int kStep = 16, kParts = 1;
  static Mask tail(int64_t n) { return static_cast<Mask>((1u << n) - 1); }
  HIPPO_AVX512 static void load_w(const float* w, Mask m, __m512* out) {
    out[0] = _mm512_maskz_loadu_ps(m, w);
  }
  HIPPO_AVX512 static void load_x(const float* x, Mask m, __m512* out) {
    out[0] = _mm512_maskz_loadu_ps(m, x);
  }
  HIPPO_AVX512 static __m512 madd(__m512 acc, __m512 w, __m512 x) {
    return _mm512_fmadd_ps(w, x, acc);
  }
};
// Shared by the bf16 policies: 32 weights (one 512-bit load) per step.
struct Bf16Step {
  using T = uint16_t;
  using Mask = __mmask32;
  static constexpr int kStep = 32;
  static Mask tail(int64_t n) { return static_cast<Mask>((uint64_t{1} << n) - 1); }
};
// bf16 widened exactly to fp32 by a 16-bit shift: `w << 16` is the even elements,
// `w & 0xffff0000` the odd ones. A is pre-arranged to match (per 32-chunk its 16 even
// elements, then its 16 odd ones, zero padded to a multiple of 32; split_even_odd in
// gemm_bf16.cpp), read as two float vectors.
struct Bf16Weights : Bf16Step {
  using X = float;
  static constexpr int kParts = 2;
  HIPPO_AVX512 static void load_w(const uint16_t* w, Mask m, __m512* out) {
    const __m512i v = _mm512_maskz_loadu_epi16(m, w);
    out[0] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    out[1] = _mm512_castsi512_ps(
        _mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  HIPPO_AVX512 static void load_x(const float* x, Mask, __m512* out) {
    out[0] = _mm512_loadu_ps(x);
    out[1] = _mm512_loadu_ps(x + 16);
  }
  HIPPO_AVX512 static __m512 madd(__m512 acc, __m512 w, __m512 x) {
    return _mm512_fmadd_ps(w, x, acc);
  }
};
// bf16 weights times x split into two bf16 parts, x = hi + lo (about 2^-17 relative, not
// rounded to bf16): VDPBF16PS on (W, hi) and (W, lo), no widening. A is pre-arranged per
// 32-chunk as its 32 hi values then its 32 lo values (the room of 32 floats, so A is read as
// Bf16Weights reads its even/odd split; split_hi_lo in gemm_bf16.cpp).
struct Bf16HiLoWeights : Bf16Weights {
  HIPPO_AVX512 static void load_w(const uint16_t* w, Mask m, __m512* out) {
    out[0] = out[1] = _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, w));
  }
  HIPPO_AVX512 static __m512 madd(__m512 acc, __m512 w, __m512 x) {
    return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh&>(w), reinterpret_cast<__m512bh&>(x));
  }
};
// bf16 weights times activations rounded to bf16 (the fast mode, kernels/gemm_bf16.h):
// VDPBF16PS multiplies 32 bf16 pairs into 16 fp32 sums, half the instructions of widening
// and FMA per weight, which is what bounds batched decoding (docs/performance.md).
struct Bf16DotWeights : Bf16Step {
  using X = uint16_t;
  static constexpr int kParts = 1;
  HIPPO_AVX512 static void load_w(const uint16_t* w, Mask m, __m512* out) {
    out[0] = _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, w));
  }
  HIPPO_AVX512 static void load_x(const uint16_t* x, Mask m, __m512* out) {
    out[0] = _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, x));
  }
  HIPPO_AVX512 static __m512 madd(__m512 acc, __m512 w, __m512 x) {
    return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh&>(w), reinterpret_cast<__m512bh&>(x));
  }
};

// One tile: MR rows of A times NR rows of B over inputs [k0, k0 + K). The tile's B rows are
// o, o + span, ..., o + (NR - 1) span (outputs likewise): span 1 is a block of adjacent rows,
// a larger span the spread layout (see run()). The sums are the same either way, bit for bit.
// R8: the tile's B rows are in the Rows8 order (all below op.r8, in one group; span 1; k0 and
// the steps multiples of 32): row t's 32 inputs from k at Wr8 + 32 t + 8 k. The same products
// in the same order, so the same bits.
template <int MR, int NR, class WT, bool R8 = false, bool R8_PREFETCH = false>
HIPPO_AVX512 void tile(const Operands<WT>& op, int64_t r, int64_t o, int64_t k0,
                       int64_t K, float beta, int64_t span = 1) {
  constexpr int P = WT::kParts;
  const typename WT::X* x = op.A + r * op.lda + k0;
  const typename WT::T* W = op.B + o * op.ldb + k0;
  const int64_t ldx = op.lda, ldw = op.ldb * span;
  // The next tile's first B row: NR rows on when adjacent, the next row when spread.
  const int64_t next = span == 1 ? NR * op.ldb : op.ldb;
  // Rows8: the tile's rows lie in one group (block_range aligns them), row t at Wr8 + 32 t.
  [[maybe_unused]] const typename WT::T* Wr8 = nullptr;
  [[maybe_unused]] const typename WT::T* Wr8_next = nullptr;  // the next tile's (NR < 8)
  if constexpr (R8) {
    Wr8 = op.B + bf16_offset(o, 0, op.ldb, op.r8) + 8 * k0;
    Wr8_next = op.B + bf16_offset(o + NR, 0, op.ldb, op.r8) + 8 * k0;
  }
  __m512 acc[MR][NR];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int t = 0; t < NR; ++t) acc[m][t] = _mm512_setzero_ps();
  auto body = [&](int64_t k, typename WT::Mask mask) HIPPO_AVX512 {
    __m512 w[NR][P];
#pragma GCC unroll 16
    for (int t = 0; t < NR; ++t) {
      // The next tile's weights (the NR rows after these), one tile ahead: a single row read
      // the weights at 21-25 GB/s without it, 29-30 with it (bench_gemm_bf16, Zen 5). Into L2
      // only (T1): on the Zen 4 of session 12 a T0 prefetch of the eight streams of a batch-1
      // tile read 8.6-9.7 GB/s at 768 inputs, T1 16.5-22.8, and bf16 batch-1 decoding went
      // from 42 to 80 tokens/s (docs/performance.md "Session 12"). A prefetch past the end
      // of B does not fault.
      if constexpr (R8) {
        // One pass of whole-group tiles (1-2 rows of x) is one stream: no software prefetch,
        // the hardware prefetchers do best (a microbenchmark on session 13's Zen 4 read 26-29
        // GB/s without, 21-24 with T0 or T1 prefetches 0.5-4 KiB ahead; streaming 29-30; in
        // batch-2 decoding 158-174 tokens/s without, 124-134 with). Narrower tiles, and
        // several passes over each tile (3-8 rows of x), take the next tile's lines into L2
        // as in the row-major order (batch 4 without: 150-190 tokens/s, against 220-250 in the
        // row-major order; with: 240-300).
        if constexpr (NR < 8 || R8_PREFETCH)
          _mm_prefetch(reinterpret_cast<const char*>(Wr8_next + t * 32 + 8 * k), _MM_HINT_T1);
        WT::load_w(Wr8 + t * 32 + 8 * k, mask, w[t]);
      } else {
        _mm_prefetch(reinterpret_cast<const char*>(W + next + t * ldw + k), _MM_HINT_T1);
        WT::load_w(W + t * ldw + k, mask, w[t]);
      }
    }
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      __m512 xv[P];
      WT::load_x(x + m * ldx + k, mask, xv);
#pragma GCC unroll 16
      for (int t = 0; t < NR; ++t)
#pragma GCC unroll 2
        for (int q = 0; q < P; ++q) acc[m][t] = WT::madd(acc[m][t], w[t][q], xv[q]);
    }
  };
  const int64_t full = K / WT::kStep * WT::kStep;
  for (int64_t k = 0; k < full; k += WT::kStep) body(k, WT::tail(WT::kStep));
  if (full < K) body(full, WT::tail(K - full));
  float* y = op.C + r * op.ldc + o;
  auto put = [&](int m, int t, float v) {
    float* d = y + m * op.ldc + t * span;
    *d = beta == 0.0f ? op.alpha * v : op.alpha * v + beta * *d;
  };
  // Accumulators in groups of 8 (index i = m * NR + t) through sum8, any rest one by one.
  constexpr int kAcc = MR * NR, kGrouped = kAcc / 8 * 8;
  alignas(64) float sums[16];
#pragma GCC unroll 4
  for (int g = 0; g < kGrouped; g += 8) {
    __m512 v[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) v[j] = acc[(g + j) / NR][(g + j) % NR];
    _mm512_store_ps(sums, sum8(v));
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      put((g + j) / NR, (g + j) % NR, sums[4 * j]);
      put((g + j + 4) / NR, (g + j + 4) % NR, sums[4 * j + 1]);
    }
  }
#pragma GCC unroll 8
  for (int i = kGrouped; i < kAcc; ++i)
    put(i / NR, i % NR, _mm512_reduce_add_ps(acc[i / NR][i % NR]));
}

// Outputs [o0, o1) of all M rows over inputs [k0, k0 + K): tiles of NR rows of B, each used
// by all rows in passes of G rows (the passes after the first read the tile from L1).
template <int G, int NR, class WT, bool R8 = false, bool R8_PREFETCH = false>
HIPPO_AVX512 void block_range(const Operands<WT>& op, int64_t M, int64_t o0, int64_t o1,
                              int64_t k0, int64_t K, float beta) {
  auto rows_pass = [&]<int W>(int64_t o) HIPPO_AVX512 {
    int64_t r = 0;
    for (; r + G <= M; r += G) tile<G, W, WT, R8, R8_PREFETCH>(op, r, o, k0, K, beta);
    switch (M - r) {  // the last rows, fewer than G
#define HIPPO_REST(n)                                             \
  case n:                                                         \
    if constexpr (n < G) tile<n, W, WT, R8, R8_PREFETCH>(op, r, o, k0, K, beta); \
    break;
      HIPPO_REST(1) HIPPO_REST(2) HIPPO_REST(3) HIPPO_REST(4) HIPPO_REST(5) HIPPO_REST(6)
      HIPPO_REST(7)
#undef HIPPO_REST
      default: break;
    }
  };
  int64_t o = o0;
  if constexpr (R8)  // lone rows up to a multiple of NR: each tile then lies in one group
    for (; o < o1 && o % NR != 0; ++o) rows_pass.template operator()<1>(o);
  for (; o + NR <= o1; o += NR) rows_pass.template operator()<NR>(o);
  for (; o < o1; ++o) rows_pass.template operator()<1>(o);
}

// block_range over [o0, o1), the rows in the Rows8 order (below op.r8) by their own tiles.
template <int G, int NR, class WT, bool R8_PREFETCH = false>
HIPPO_AVX512 void block(const Operands<WT>& op, int64_t M, int64_t o0, int64_t o1,
                        int64_t k0, int64_t K, float beta) {
  if constexpr (std::is_same_v<typename WT::T, uint16_t>) {
    const int64_t split = std::clamp(op.r8, o0, o1);
    if (split > o0) block_range<G, NR, WT, true, R8_PREFETCH>(op, M, o0, split, k0, K, beta);
    if (split < o1) block_range<G, NR, WT>(op, M, split, o1, k0, K, beta);
  } else {
    block_range<G, NR, WT>(op, M, o0, o1, k0, K, beta);
  }
}

template <class WT>
using BlockFn = void (*)(const Operands<WT>&, int64_t, int64_t, int64_t, int64_t,
                         int64_t, float);

// Measured in cache (768 and 3072 inputs, 64-byte aligned, fp32): 8 rows x 2 outputs
// 145-167 GFLOP/s, 4 x 4 106, 2 x 8 74-95, 8 x 3 (x re-read from L1 per output) 121-126; at
// 4 rows 4 x 4 102-145 against 71 for 8 x 2's remainder path. Streamed from memory all shapes
// read 15-19 GB/s at 8 rows (oneDNN 12-14): the FMAs per weight line then fill the reorder
// window and fewer misses are in flight (docs/performance.md).
template <class WT>
BlockFn<WT> plan_for(int64_t rows, bool rows8) {
  if (rows == 1) return block<1, 8, WT>;
  if (rows == 2) return block<2, 8, WT>;
  // Rows8 (bf16): whole-group tiles in passes of 2 rows (session 13, 125M hybrid, medians of
  // 5 A B rounds: batch 4 255 tokens/s against 231 row-major, batch 8 273 against 252; 4 x 4
  // tiles on Rows8 ran batch 4 at 150-190).
  if (rows8 && rows <= 8) return block<2, 8, WT, true>;
  if (rows <= 4) return block<4, 4, WT>;
  return block<8, 2, WT>;
}

// The spread layout (5-8 rows, fp32, inputs <= 1024): outputs o in [o0, o1) of a range split in
// eight parts `span` apart, each tile 2 rows x 8 weight rows o + t span (eight memory streams
// far apart), the rows in passes of 2 (the passes after the first read the tile from L1).
// Streamed from memory (bench/bench_gemm_small, 1 thread, 8 rows, K = 768) it read the
// weights at 15.5-17 GB/s against 13-14.5 for 8 x 2 tiles of adjacent rows, which keep two
// streams open (docs/serving.md "Batched decoding"); at K = 3072 adjacent tiles were faster.
template <class WT>
HIPPO_AVX512 void spread_block(const Operands<WT>& op, int64_t M, int64_t o0, int64_t o1,
                               int64_t span, int64_t k0, int64_t K, float beta) {
  for (int64_t o = o0; o < o1; ++o) {
    int64_t r = 0;
    for (; r + 2 <= M; r += 2) tile<2, 8, WT>(op, r, o, k0, K, beta, span);
    if (r < M) tile<1, 8, WT>(op, r, o, k0, K, beta, span);
  }
}

std::atomic<bool> g_spread{true};

// Whether a call of M rows and K inputs takes the spread layout: only for weight rows that
// start on cache lines. With rows 24 bytes off (the mapped weights of files written before
// the data section was 64-byte aligned) every load of the eight streams spans two lines, and
// the layout measured ~10% slower than adjacent tiles in batch-8 decoding.
template <class WT>
bool spread_for(const Operands<WT>& op, int64_t M, int64_t K) {
  return std::is_same_v<WT, F32Weights> && M >= 5 && M <= 8 && K <= 1024 &&
         reinterpret_cast<uintptr_t>(op.B) % 64 == 0 &&
         (op.ldb * static_cast<int64_t>(sizeof(typename WT::T))) % 64 == 0 &&
         g_spread.load(std::memory_order_relaxed);
}

// Outputs [lo, hi) of all M rows on the calling thread: with the spread layout the first
// 8 * span of them in groups of 6 spread tiles (48 outputs), the rest (fewer than 8) in
// adjacent blocks of 48. Within a block the inputs go in chunks whose A rows fill at most
// 32 KiB: the A vectors are re-read from L1 for every tile (at K = 3072 and 8 rows, from L2
// they cost 35% of the speed in cache).
constexpr int64_t kBlock = 48;  // a multiple of every tile width

template <class WT>
void run_range(const Operands<WT>& op, int64_t M, int64_t K, float beta, int64_t lo,
               int64_t hi) {
  const BlockFn<WT> run_block = plan_for<WT>(M, op.r8 > 0);
  const int64_t chunk = std::max<int64_t>(32, (int64_t{8192} / M) / 32 * 32);
  int64_t rest = lo;
  if (spread_for<WT>(op, M, K)) {
    const int64_t span = (hi - lo) / 8;
    for (int64_t g0 = 0; g0 < span; g0 += kBlock / 8) {
      const int64_t g1 = std::min(span, g0 + kBlock / 8);
      for (int64_t k0 = 0; k0 < K; k0 += chunk)
        spread_block(op, M, lo + g0, lo + g1, span, k0, std::min(chunk, K - k0),
                     k0 == 0 ? beta : 1.0f);
    }
    rest = lo + 8 * span;
  }
  for (int64_t o0 = rest; o0 < hi; o0 += kBlock) {
    const int64_t o1 = std::min(hi, o0 + kBlock);
    for (int64_t k0 = 0; k0 < K; k0 += chunk)
      run_block(op, M, o0, o1, k0, std::min(chunk, K - k0), k0 == 0 ? beta : 1.0f);
  }
}

// Outputs split over threads in blocks of 48, each thread's range run by run_range.
template <class WT>
void run(const Operands<WT>& op, int64_t M, int64_t N, int64_t K, float beta) {
  const int64_t blocks = (N + kBlock - 1) / kBlock;
  parallel_range(blocks, worth_parallel_step(M * N * K), [&](int64_t b0, int64_t b1) {
    run_range(op, M, K, beta, b0 * kBlock, std::min(N, b1 * kBlock));
  });
}

// Any rows count, kSmallRowsMax at a time (the bf16 entry points: gemm_bf16.cpp's small-rows
// path is also called with more rows by its tests and benchmarks).
template <class WT>
void run_any_rows(Operands<WT> op, int64_t M, int64_t N, int64_t K, float beta) {
  for (int64_t r = 0; r < M; r += kSmallRowsMax) {
    run<WT>(op, std::min(kSmallRowsMax, M - r), N, K, beta);
    op.A += kSmallRowsMax * op.lda;
    op.C += kSmallRowsMax * op.ldc;
  }
}

// Rows8 weights: whole groups of eight rows of N, rows K apart, K a multiple of 32 (the tiles
// step through inputs 32 at a time from multiples of 32).
void check_rows8(const char* what, int64_t N, int64_t K, int64_t rows8, int64_t ldw) {
  HIPPO_CHECK(rows8 == 0 || (rows8 % 8 == 0 && rows8 <= N && K % 32 == 0 && ldw == K), what, ": ",
              rows8, " rows in the Rows8 order of ", N, " with ", K, " inputs, rows ", ldw,
              " apart (whole groups of 8, inputs a multiple of 32, rows K apart)");
}

}  // namespace

bool small_rows_bf16_dot_available() { return isa_enabled(Isa::Avx512Bf16); }

bool small_rows_kernel_available() { return isa_enabled(Isa::Avx512); }

bool small_rows_spread_for(int64_t M, int64_t K, const float* B, int64_t ldb) {
  return spread_for<F32Weights>({nullptr, 0, B, ldb, nullptr, 0, 1.0f}, M, K);
}

void set_small_rows_spread(bool on) { g_spread.store(on, std::memory_order_relaxed); }

bool small_rows_spread() { return g_spread.load(std::memory_order_relaxed); }

void gemm_small_nt(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  HIPPO_CHECK(M >= 0 && M <= kSmallRowsMax, "gemm_small_nt: ", M, " rows (at most ",
              kSmallRowsMax, ")");
  HIPPO_CHECK(small_rows_kernel_available(), "gemm_small_nt: this CPU lacks AVX-512");
  if (M == 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  run<F32Weights>({A, lda, B, ldb, C, ldc, alpha}, M, N, K, beta);
}

void gemm_small_nt_part(int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                        int64_t ldc, int64_t begin, int64_t end) {
  HIPPO_CHECK(M >= 0 && M <= kSmallRowsMax, "gemm_small_nt_part: ", M, " rows (at most ",
              kSmallRowsMax, ")");
  HIPPO_CHECK(0 <= begin && begin <= end && end <= N, "gemm_small_nt_part: outputs [", begin,
              ", ", end, ") outside [0, ", N, ")");
  HIPPO_CHECK(small_rows_kernel_available(), "gemm_small_nt_part: this CPU lacks AVX-512");
  if (M == 0 || begin == end) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = begin; j < end; ++j)
        C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  run_range<F32Weights>({A, lda, B, ldb, C, ldc, alpha}, M, K, beta, begin, end);
}

void gemm_small_nt_bf16_split(int64_t M, int64_t N, int64_t K, const float* xs, int64_t ldxs,
                              Bf16Data W, int64_t ldw, float beta, float* C,
                              int64_t ldc) {
  HIPPO_CHECK(M >= 0, "gemm_small_nt_bf16_split: ", M, " rows");
  HIPPO_CHECK(small_rows_kernel_available(), "gemm_small_nt_bf16_split: this CPU lacks AVX-512");
  HIPPO_CHECK(ldxs % 32 == 0 && ldxs >= K, "gemm_small_nt_bf16_split: split rows of ", ldxs,
              " floats for ", K, " inputs (a multiple of 32 at least K)");
  check_rows8("gemm_small_nt_bf16_split", N, K, W.rows8, ldw);
  if (M == 0 || N <= 0 || K <= 0) return;
  run_any_rows<Bf16Weights>({xs, ldxs, W.w, ldw, C, ldc, 1.0f, W.rows8}, M, N, K, beta);
}

void gemm_small_nt_bf16_dot(int64_t M, int64_t N, int64_t K, const uint16_t* xb, int64_t ldxb,
                            Bf16Data W, int64_t ldw, float beta, float* C, int64_t ldc) {
  HIPPO_CHECK(M >= 0, "gemm_small_nt_bf16_dot: ", M, " rows");
  HIPPO_CHECK(small_rows_bf16_dot_available(),
              "gemm_small_nt_bf16_dot: this CPU lacks AVX512_BF16");
  check_rows8("gemm_small_nt_bf16_dot", N, K, W.rows8, ldw);
  if (M == 0 || N <= 0 || K <= 0) return;
  run_any_rows<Bf16DotWeights>({xb, ldxb, W.w, ldw, C, ldc, 1.0f, W.rows8}, M, N, K, beta);
}

void gemm_small_nt_bf16_hilo(int64_t M, int64_t N, int64_t K, const float* xs, int64_t ldxs,
                             Bf16Data W, int64_t ldw, float beta, float* C, int64_t ldc) {
  HIPPO_CHECK(M >= 0, "gemm_small_nt_bf16_hilo: ", M, " rows");
  HIPPO_CHECK(small_rows_bf16_dot_available(),
              "gemm_small_nt_bf16_hilo: this CPU lacks AVX512_BF16");
  HIPPO_CHECK(ldxs % 32 == 0 && ldxs >= K, "gemm_small_nt_bf16_hilo: split rows of ", ldxs,
              " floats for ", K, " inputs (a multiple of 32 at least K)");
  check_rows8("gemm_small_nt_bf16_hilo", N, K, W.rows8, ldw);
  if (M == 0 || N <= 0 || K <= 0) return;
  run_any_rows<Bf16HiLoWeights>({xs, ldxs, W.w, ldw, C, ldc, 1.0f, W.rows8}, M, N, K, beta);
}

namespace {
template <class WT>
void run_part(const char* what, Operands<WT> op, int64_t M, int64_t N, int64_t K, float beta,
              int64_t begin, int64_t end) {
  HIPPO_CHECK(M >= 0 && M <= kSmallRowsMax, what, ": ", M, " rows (at most ", kSmallRowsMax, ")");
  HIPPO_CHECK(0 <= begin && begin <= end && end <= N, what, ": outputs [", begin, ", ", end,
              ") outside [0, ", N, ")");
  check_rows8(what, N, K, op.r8, op.ldb);
  if (M == 0 || begin == end || K <= 0) return;
  run_range<WT>(op, M, K, beta, begin, end);
}
}  // namespace

void gemm_small_nt_bf16_split_part(int64_t M, int64_t N, int64_t K, const float* xs, int64_t ldxs,
                                   Bf16Data W, int64_t ldw, float beta, float* C, int64_t ldc,
                                   int64_t begin, int64_t end) {
  HIPPO_CHECK(small_rows_kernel_available(),
              "gemm_small_nt_bf16_split_part: this CPU lacks AVX-512");
  run_part<Bf16Weights>("gemm_small_nt_bf16_split_part",
                        {xs, ldxs, W.w, ldw, C, ldc, 1.0f, W.rows8}, M, N, K, beta, begin, end);
}

void gemm_small_nt_bf16_dot_part(int64_t M, int64_t N, int64_t K, const uint16_t* xb, int64_t ldxb,
                                 Bf16Data W, int64_t ldw, float beta, float* C, int64_t ldc,
                                 int64_t begin, int64_t end) {
  HIPPO_CHECK(small_rows_bf16_dot_available(),
              "gemm_small_nt_bf16_dot_part: this CPU lacks AVX512_BF16");
  run_part<Bf16DotWeights>("gemm_small_nt_bf16_dot_part",
                           {xb, ldxb, W.w, ldw, C, ldc, 1.0f, W.rows8}, M, N, K, beta, begin, end);
}

void gemm_small_nt_bf16_hilo_part(int64_t M, int64_t N, int64_t K, const float* xs, int64_t ldxs,
                                  Bf16Data W, int64_t ldw, float beta, float* C, int64_t ldc,
                                  int64_t begin, int64_t end) {
  HIPPO_CHECK(small_rows_bf16_dot_available(),
              "gemm_small_nt_bf16_hilo_part: this CPU lacks AVX512_BF16");
  run_part<Bf16HiLoWeights>("gemm_small_nt_bf16_hilo_part",
                            {xs, ldxs, W.w, ldw, C, ldc, 1.0f, W.rows8}, M, N, K, beta, begin, end);
}

void matmul_xwt_small(const float* x, const float* W, float* y, int64_t rows, int64_t in,
                      int64_t out, bool accumulate) {
  gemm_small_nt(rows, out, in, 1.0f, x, in, W, in, accumulate ? 1.0f : 0.0f, y, out);
}

}  // namespace hippo
