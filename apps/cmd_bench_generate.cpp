// hippo bench generate: hippo::bench_generate (include/hippo/bench.hpp).
#include <memory>

#include "apps/commands.h"
#include "hippo/bench.hpp"

namespace hippo::cli {

void add_bench_generate(CLI::App& bench, std::function<int()>& run) {
  auto o = std::make_shared<BenchGenerateOptions>();
  auto* g = bench.add_subcommand(
      "generate", "Prompt and decode tokens/s: 125M-shape H3 hybrid vs Transformer (random weights)");
  g->add_option("-t,--threads", o->threads, "Threads")->capture_default_str();
  g->add_option("-n,--tokens", o->tokens, "Decode steps per case (fastest 16-step window reported)")
      ->capture_default_str();
  g->add_option("--prompts", o->prompts, "Prompt lengths")->capture_default_str();
  g->add_option("--batches", o->batches, "Decode batch sizes")->capture_default_str();
  g->add_flag("--long", o->long_prompt, "Also a prompt of 8192 tokens");
  g->add_flag("--bf16", o->bf16, "Linear and embedding weights in bf16 (rounded to nearest even)");
  g->add_flag("--q8", o->q8, "Linear and embedding weights in q8 (int8 in blocks of 32, fp32 scales)");
  g->add_option("--q8-layout", o->q8_layout,
                "With --q8: the weights' byte order (rows4: four rows interleaved, one stream "
                "for the decode kernel; auto: rows4 where the AVX512-VNNI kernel runs)")
      ->check(CLI::IsMember({"auto", "rows", "rows4"}))
      ->capture_default_str();
  g->add_option("--bf16-layout", o->bf16_layout,
                "With --bf16: the weights' element order (rows8: eight rows interleaved, one "
                "stream for the decode kernel; auto: rows8 where AVX-512 runs)")
      ->check(CLI::IsMember({"auto", "rows", "rows8"}))
      ->capture_default_str();
  g->add_option("--only", o->only, "Bench one model only (for profiling)")
      ->check(CLI::IsMember({"hybrid", "transformer", "h3"}));
  g->add_flag("--no-h3", o->no_h3, "Leave out the H3-only model (its column shows decode flat in "
              "the prompt length)");
  g->add_flag("--fast-bf16", o->fast_bf16,
              "With --bf16: round decoding's activations to bf16 (VDPBF16PS), as llama.cpp does");
  g->add_option("--kv-cache", o->kv_cache,
                 "Attention KV cache dtype: fp32, bf16, q8 (int8 rows with a scale each), or "
                 "auto (bf16 with --bf16/--q8, else fp32)")
      ->check(CLI::IsMember({"auto", "fp32", "bf16", "q8"}))
      ->capture_default_str();
  g->add_flag("--quick", o->quick, "One prompt length (512) and at most 16 decode steps");
  g->callback([&run, o] { run = [o] { bench_generate(*o); return 0; }; });
}

}  // namespace hippo::cli
