// CLI options that choose how a model file is loaded (hippo::LoadOptions), shared by the
// commands that load one: generate and serve.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace hippo::cli {

inline void add_kv_cache_option(CLI::App* c, std::string& kv_cache) {
  c->add_option("--kv-cache", kv_cache,
                "Attention KV cache dtype: fp32, bf16 (half the bytes per decode step), q8 (int8 "
                "rows with a scale each: 1.06 bytes per value at head_dim 64), or auto (bf16 for "
                "bf16/q8 weight files, fp32 for fp32 files); saved states need the same")
      ->check(CLI::IsMember({"auto", "fp32", "bf16", "q8"}))
      ->capture_default_str();
}

inline void add_q8_layout_option(CLI::App* c, std::string& q8_layout) {
  c->add_option("--q8-layout", q8_layout,
                "q8 files: rows (use the mapped file, no copy), rows4 (copy once into four "
                "interleaved rows: faster batch-1 decoding on AVX512-VNNI), or auto (rows4 "
                "where that kernel runs)")
      ->check(CLI::IsMember({"auto", "rows", "rows4"}))
      ->capture_default_str();
}

inline void add_bf16_layout_option(CLI::App* c, std::string& bf16_layout) {
  c->add_option("--bf16-layout", bf16_layout,
                "bf16 files: rows (use the mapped file, no copy), rows8 (copy once into eight "
                "interleaved rows: faster decoding on AVX-512), or auto (rows8 where AVX-512 "
                "runs)")
      ->check(CLI::IsMember({"auto", "rows", "rows8"}))
      ->capture_default_str();
}

}  // namespace hippo::cli
