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

#include "core/bf16.h"
#include "core/error.h"
#include "core/scratch.h"
#include "kernels/gemm.h"
#include "kernels/gemm_small.h"
#include "kernels/parallel_work.h"

namespace hippo {

namespace {

constexpr int64_t kChunk = 32;  // bf16 weights per 512-bit load

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

void store(float* y, float v, bool accumulate) { *y = accumulate ? *y + v : v; }

// Output o of every row: the portable loop, shared by the whole call and its row-range form.
void gemv_scalar_output(const float* x, Bf16Data W, float* y, int64_t rows, int64_t in,
                        int64_t out, int64_t o, bool accumulate) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * in;
    float acc = 0;
    for (int64_t i = 0; i < in; ++i)
      acc += bf16_to_f32(W.w[bf16_offset(o, i, in, W.rows8)]) * xr[i];
    store(y + r * out + o, acc, accumulate);
  }
}

void gemv_scalar(const float* x, Bf16Data W, float* y, int64_t rows, int64_t in,
                 int64_t out, bool accumulate) {
#pragma omp parallel for schedule(static) if (worth_parallel_step(rows * in * out))
  for (int64_t o = 0; o < out; ++o) gemv_scalar_output(x, W, y, rows, in, out, o, accumulate);
}

// Both AVX-512 paths run on the small-rows kernel (kernels/gemm_small.h); here is the
// arrangement of x each one reads.
// ---- AVX-512F: widen W by a 16-bit shift, fp32 FMA ------------------------------------------
// A 512-bit load of 32 bf16 holds element 2j in the low and 2j+1 in the high half of 32-bit lane
// j: `w << 16` is the even elements as fp32, `w & 0xffff0000` the odd ones. x is rearranged once
// per call to match (per 32-chunk: its 16 even elements, then its 16 odd ones; zero padded).

void split_even_odd(const float* x, float* xs, int64_t in) {
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

// Per 32-chunk: the 32 hi values, then the 32 lo values (gemm_small_nt_bf16_hilo's layout).
void split_hi_lo(const float* x, uint16_t* out, int64_t in) {
  const int64_t padded = round_up(in, kChunk);
  for (int64_t c = 0; c < padded; c += kChunk)
    for (int64_t j = 0; j < kChunk; ++j) {
      const float v = c + j < in ? x[c + j] : 0.0f;
      const uint16_t hi = f32_to_bf16(v);
      out[2 * c + j] = hi;
      out[2 * c + kChunk + j] = f32_to_bf16(v - bf16_to_f32(hi));
    }
}

void gemv_avx512(const float* x, Bf16Data W, float* y, int64_t rows, int64_t in,
                 int64_t out, bool accumulate) {
  thread_local ScratchBuffer buf;  // 64-byte aligned: split loads halve the kernel's speed in cache
  const int64_t st = round_up(in, kChunk);
  float* xs = buf.get(static_cast<size_t>(rows * st));
  for (int64_t r = 0; r < rows; ++r) split_even_odd(x + r * in, xs + r * st, in);
  gemm_small_nt_bf16_split(rows, out, in, xs, st, W, in, accumulate ? 1.0f : 0.0f, y, out);
}

void gemv_avx512bf16(const float* x, Bf16Data W, float* y, int64_t rows, int64_t in,
                     int64_t out, bool accumulate) {
  thread_local ScratchBuffer buf;  // 64-byte aligned: split loads halve the kernel's speed in cache
  const int64_t st = round_up(in, kChunk);  // floats per row: 2 bf16 per input
  float* xs = buf.get(static_cast<size_t>(rows * st));
  for (int64_t r = 0; r < rows; ++r)
    split_hi_lo(x + r * in, reinterpret_cast<uint16_t*>(xs + r * st), in);
  gemm_small_nt_bf16_hilo(rows, out, in, xs, st, W, in, accumulate ? 1.0f : 0.0f, y, out);
}

}  // namespace

void matmul_xwt_bf16_gemv(const float* x, Bf16Data W, float* y, int64_t rows, int64_t in,
                          int64_t out, bool accumulate, Isa level) {
  HIPPO_CHECK(isa_enabled(level), "bf16 matmul: the ", isa_name(level), " path is not enabled (",
              cpu_features_summary(), ")");
  if (rows <= 0 || out <= 0) return;
  if (in <= 0) {
    if (!accumulate) std::fill(y, y + rows * out, 0.0f);
    return;
  }
  // Both AVX-512 paths run on the small-rows kernel (kernels/gemm_small.h). On this Zen 5
  // (bench/bench_gemm_bf16.cpp, weights streamed, 1 thread) VDPBF16PS on x = hi + lo read the
  // weights at 13-16 GB/s at 8 rows against 7-9 for the shift+FMA path, and as fast at one row
  // (23-27 GB/s both).
  switch (level) {
    case Isa::Avx512Bf16: return gemv_avx512bf16(x, W, y, rows, in, out, accumulate);
    case Isa::Avx512: return gemv_avx512(x, W, y, rows, in, out, accumulate);
    default: return gemv_scalar(x, W, y, rows, in, out, accumulate);
  }
}

void matmul_xwt_bf16_blocked(const float* x, Bf16Data W, float* y, int64_t rows,
                             int64_t in, int64_t out, bool accumulate) {
  if (rows <= 0 || out <= 0) return;
  // Blocks of about 4 MiB of widened weights (they stay in L3 while the GEMM reuses them). With
  // 1 MiB blocks, narrow blocks (85 outputs at in = 3072) put oneDNN on a path 2-4x slower.
  constexpr int64_t kBlockFloats = int64_t{1} << 20;
  const int64_t nb = std::min(out, std::max<int64_t>(64, kBlockFloats / std::max<int64_t>(in, 1)));
  thread_local ScratchBuffer buf;
  float* w = buf.get(static_cast<size_t>(nb * in));
  for (int64_t o0 = 0; o0 < out; o0 += nb) {
    const int64_t n = std::min(nb, out - o0);
    if (o0 >= W.rows8) {
      const uint16_t* src = W.w + o0 * in;
#pragma omp parallel for schedule(static) if (worth_parallel(n * in))
      for (int64_t i = 0; i < n * in; ++i) w[i] = bf16_to_f32(src[i]);
    } else {  // rows in the Rows8 order (core/weight.h), widened into row-major
#pragma omp parallel for schedule(static) if (worth_parallel(n * in))
      for (int64_t o = 0; o < n; ++o)
        for (int64_t c = 0; c < in; c += kChunk) {  // in % 32 == 0 in Rows8
          const uint16_t* src = W.w + bf16_offset(o0 + o, c, in, W.rows8);
          float* dst = w + o * in + c;
#pragma omp simd
          for (int64_t j = 0; j < kChunk; ++j) dst[j] = bf16_to_f32(src[j]);
        }
    }
    gemm(false, true, rows, n, in, 1.0f, x, in, w, in, accumulate ? 1.0f : 0.0f, y + o0, out);
  }
}

namespace {
std::atomic<Bf16Activations> g_activations{Bf16Activations::Exact};
}  // namespace

void set_bf16_activations(Bf16Activations mode) { g_activations.store(mode); }
Bf16Activations bf16_activations() { return g_activations.load(std::memory_order_relaxed); }

void matmul_xwt_bf16_rounded_x(const float* x, Bf16Data W, float* y, int64_t rows,
                               int64_t in, int64_t out, bool accumulate) {
  HIPPO_CHECK(small_rows_bf16_dot_available(),
              "bf16 matmul with rounded activations: this CPU lacks AVX512_BF16");
  if (rows <= 0 || out <= 0) return;
  if (in <= 0) {
    if (!accumulate) std::fill(y, y + rows * out, 0.0f);
    return;
  }
  thread_local ScratchBuffer buf;  // 64-byte aligned rows of bf16, zero padded to 32
  const int64_t st = round_up(in, kChunk);
  uint16_t* xb = reinterpret_cast<uint16_t*>(buf.get(static_cast<size_t>(rows * st / 2 + 16)));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < st; ++i) xb[r * st + i] = i < in ? f32_to_bf16(x[r * in + i]) : 0;
  gemm_small_nt_bf16_dot(rows, out, in, xb, st, W, in, accumulate ? 1.0f : 0.0f, y, out);
}

void matmul_xwt_bf16(const float* x, Bf16Data W, float* y, int64_t rows, int64_t in,
                     int64_t out, bool accumulate, Bf16Activations act) {
  if (rows <= kBf16GemvRows && act == Bf16Activations::RoundedToBf16 &&
      small_rows_bf16_dot_available())
    matmul_xwt_bf16_rounded_x(x, W, y, rows, in, out, accumulate);
  else if (rows <= kBf16GemvRows)
    matmul_xwt_bf16_gemv(x, W, y, rows, in, out, accumulate, active_isa());
  else
    matmul_xwt_bf16_blocked(x, W, y, rows, in, out, accumulate);
}

void matmul_xwt_bf16_part(const float* x, Bf16Data W, float* y, int64_t rows, int64_t in,
                          int64_t out, bool accumulate, Bf16Activations act, int64_t begin,
                          int64_t end) {
  HIPPO_CHECK(rows >= 0 && rows <= kBf16GemvRows, "matmul_xwt_bf16_part: ", rows,
              " rows (at most ", kBf16GemvRows, ")");
  HIPPO_CHECK(0 <= begin && begin <= end && end <= out, "matmul_xwt_bf16_part: outputs [", begin,
              ", ", end, ") outside [0, ", out, ")");
  if (rows == 0 || begin == end) return;
  if (in <= 0) {
    if (!accumulate)
      for (int64_t r = 0; r < rows; ++r) std::fill(y + r * out + begin, y + r * out + end, 0.0f);
    return;
  }
  const float beta = accumulate ? 1.0f : 0.0f;
  const int64_t st = round_up(in, kChunk);
  thread_local ScratchBuffer buf;  // this thread's arrangement of x (each thread makes its own)
  if (act == Bf16Activations::RoundedToBf16 && small_rows_bf16_dot_available()) {
    uint16_t* xb = reinterpret_cast<uint16_t*>(buf.get(static_cast<size_t>(rows * st / 2 + 16)));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < st; ++i) xb[r * st + i] = i < in ? f32_to_bf16(x[r * in + i]) : 0;
    gemm_small_nt_bf16_dot_part(rows, out, in, xb, st, W, in, beta, y, out, begin, end);
    return;
  }
  const Isa level = active_isa();
  float* xs = buf.get(static_cast<size_t>(rows * st));
  if (level == Isa::Avx512Bf16) {
    for (int64_t r = 0; r < rows; ++r)
      split_hi_lo(x + r * in, reinterpret_cast<uint16_t*>(xs + r * st), in);
    gemm_small_nt_bf16_hilo_part(rows, out, in, xs, st, W, in, beta, y, out, begin, end);
  } else if (level == Isa::Avx512) {
    for (int64_t r = 0; r < rows; ++r) split_even_odd(x + r * in, xs + r * st, in);
    gemm_small_nt_bf16_split_part(rows, out, in, xs, st, W, in, beta, y, out, begin, end);
  } else {
    for (int64_t o = begin; o < end; ++o) gemv_scalar_output(x, W, y, rows, in, out, o, accumulate);
  }
}

void matmul_xwt_bf16_ref(const float* x, Bf16Data W, float* y, int64_t rows, int64_t in,
                         int64_t out, bool accumulate) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = accumulate ? y[r * out + o] : 0.0;
      for (int64_t i = 0; i < in; ++i)
        acc +=
            static_cast<double>(bf16_to_f32(W.w[bf16_offset(o, i, in, W.rows8)])) * x[r * in + i];
      y[r * out + o] = static_cast<float>(acc);
    }
}

}  // namespace hippo
