// hippo's benchmarks, as `hippo bench gemm` and `hippo bench generate` run them: each prints
// its report (tables) to stdout and progress to stderr. Options out of range are an Error.
#pragma once
#include <string>
#include <vector>

#include "hippo/error.hpp"

namespace hippo {

struct BenchGemmOptions {
  int threads = 1;
  int reps = 7;  // median of this many timed calls per shape
};

// GFLOP/s of the GEMM on the model's own shapes (H3 projections, MLP up/down, backward),
// against the measured single-core FMA peak.
void bench_gemm(const BenchGemmOptions& options);

struct BenchGenerateOptions {
  int threads = 1;
  // Decode steps per case (the fastest 16-step window is reported). 32 keeps the default run
  // under 2 minutes at 1 thread; docs/performance.md uses 128.
  int tokens = 32;
  std::vector<int> prompts = {512, 1024, 2048};
  std::vector<int> batches = {1, 8};
  bool long_prompt = false;  // also a prompt of 8192 tokens
  bool quick = false;        // one prompt length (512), at most 16 decode steps
  bool bf16 = false;         // linear + embedding weights in bf16
  bool q8 = false;           // linear + embedding weights in q8 (int8, blocks of 32)
  std::string only;          // "hybrid", "transformer" or "h3": one model only (profiling)
  bool no_h3 = false;        // leave out the H3-only model
  bool fast_bf16 = false;    // with bf16: decoding activations rounded to bf16 (VDPBF16PS)
  std::string q8_layout = "auto";  // with q8: rows, rows4, auto (rows4 where AVX512-VNNI runs)
  std::string bf16_layout = "auto";  // with bf16: rows, rows8, auto (rows8 where AVX-512 runs)
  std::string kv_cache = "auto";  // attention's KV cache: fp32, bf16, q8, auto (LoadOptions::kv_cache)
};

// Prompt (prefill) and decode tokens/s of random-weight models of the 125M shape: the H3
// hybrid (attention at layer 6) against a Transformer of the same width and depth, and the
// memory-bandwidth bound of batch-1 decoding.
void bench_generate(const BenchGenerateOptions& options);

struct BenchPrefillOptions {
  int threads = 1;
  std::vector<int> lengths = {1024, 4096, 16384, 65536};
  std::vector<std::string> models = {"h3", "hybrid", "transformer"};
  int transformer_max = 16384;  // the Transformer (quadratic) only up to this length
  int chunk = 0;                // tokens per prefill chunk; 0: the default
  bool small = false;           // a d=64, 2-layer shape instead of 125M (tests)
  std::string csv;              // also write the rows to this .csv file
  int repeat = 1;               // runs of each (model, length), alternating models; medians
};

// Prefill (prompt) tokens/s and peak resident memory by length of random-weight models of the
// 125M shape: H3-only, the hybrid (attention at layer 6) and a Transformer, run through the
// chunked path (docs/design.md "Chunked prefill and evaluation").
void bench_prefill(const BenchPrefillOptions& options);

}  // namespace hippo
