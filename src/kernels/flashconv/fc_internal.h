// Internals shared by the FlashConv dispatcher and its per-instruction-set engines.
#pragma once
#include <cstdint>

namespace hippo::fc {

enum class Op { Fwd, Bwd, H3Fwd, H3Bwd };

// One fused call. Activation rows (one per (batch, channel)) start ld floats apart; kernel rows
// kld floats apart; the op uses the first L entries of each.
struct Args {
  Op op = Op::Fwd;
  const float *u = nullptr, *q = nullptr, *k = nullptr, *v = nullptr;  // inputs
  const float *K = nullptr, *D = nullptr, *dy = nullptr;
  float *y = nullptr, *du = nullptr, *dq = nullptr, *dk = nullptr, *dv = nullptr;  // outputs (=)
  float *dK = nullptr, *dD = nullptr;  // accumulated (+=)
  int B = 0, H = 0, L = 0;
  int64_t ld = 0, kld = 0;
  // State passing: each (batch, channel) row holds `chunks` pieces of L values, chunk_stride
  // floats apart, each convolved on its own; the engine treats them as B * chunks batch
  // elements, so the kernel spectrum is computed once for all of them.
  int chunks = 1;
  int64_t chunk_stride = 0;
};

// Twiddles of the packed real FFT: a complex FFT of size N (= n/2, n >= 2L the real size),
// radix-4 decimation in frequency (output in bit-reversed order) with a final radix-2 stage
// when log2 N is odd; the inverse runs the same stages backwards (decimation in time).
struct FftPlan {
  int N = 0, log2N = 0;
  // Radix-4 stage with span s (s = N/4, N/16, ...): at tw + off[log2 s], six arrays of s
  // floats: re/im of t^1, t^2, t^3 with t = exp(-2 pi i j / (4 s)).
  const float* tw = nullptr;
  int off[32] = {};
  // Per position p of the bit-reversed spectrum: W^rev(p), W = exp(-2 pi i / (2N)).
  const float* pw_re = nullptr;
  const float* pw_im = nullptr;
};

// Cached, thread-safe; built on first use of each N.
const FftPlan& fft_plan(int N);
// Complex FFT size for a causal convolution of length L: the smallest power of two >= max(L, 2).
int fft_size_for(int L);

// A per-instruction-set engine: processes W channels at once (one per SIMD lane).
struct Engine {
  int W = 1;
  // Runs a.op for channel group g (channels g*W ..) and batches [b0, b1).
  void (*run_group)(const Args& a, const FftPlan& plan, int g, int b0, int b1) = nullptr;
};

// Memory-traffic switches of the engines, on by default; benchmarks turn them off to measure
// what they gain. Set only while no FlashConv call runs. (Session 9 measured a software
// prefetch during the FFTs slower on a Zen 5; session 10's, prefetch_rows, measured faster on
// a Zen 4: docs/python.md.)
struct Tuning {
  bool stream_outputs = true;  // non-temporal stores for outputs far larger than the caches
  bool prefetch_rows = true;   // H3 forward and backward: rows prefetched during the FFTs
};
Tuning& tuning();

const Engine& engine_scalar();
const Engine& engine_avx2();
const Engine& engine_avx512();

}  // namespace hippo::fc

namespace hippo::fc {
// Checks shapes, picks the engine and runs a over all channel groups (OpenMP).
void run(Args a);
}  // namespace hippo::fc
