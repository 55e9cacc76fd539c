// Batch-1 decoding of two model files (or one file with two load options) in ONE process,
// alternated block by block: on this shared host the tokens/s of one build varied 125-176 from
// process to process (docs/performance.md "Session 15"), which hides the few-percent differences
// a decode change makes; two sessions stepped in turn see the same load, pages and bandwidth.
// Each session takes the same random prompt, then blocks of STEPS steps alternate A B A B
// (the order swapped every other round). Prints each side's median tokens/s (CPU time), the
// median of the per-round ratios B/A in tokens/s, and its spread. Public API only.
// Usage: decode_ab A.safetensors[:KV] B.safetensors[:KV] [PROMPT=2048] [STEPS=16] [ROUNDS=40]
//   KV: the KV cache (fp32 | bf16 | q8 | auto; default auto). 1 thread: OMP_NUM_THREADS=1.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "hippo/hippo.hpp"

using hippo::bench::median;

namespace {

struct Side {
  std::string label;
  std::shared_ptr<const hippo::Model> model;
};

Side load(const std::string& arg) {
  const auto colon = arg.rfind(':');
  hippo::LoadOptions opts;
  opts.tokenizer = "byte";  // token ids go in directly: no vocabulary folder needed
  std::string path = arg;
  if (colon != std::string::npos && arg.find(".safetensors", colon) == std::string::npos) {
    path = arg.substr(0, colon);
    opts.kv_cache = arg.substr(colon + 1);
  }
  auto model = hippo::Model::load(path, opts);
  return {path + " (" + model->info().weights_dtype + " weights, " + model->info().kv_cache +
              " KV)",
          model};
}

bool positive(const char* s, int& out) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (end == s || *end || v < 1 || v > 1 << 20) return false;
  out = static_cast<int>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: decode_ab A.safetensors[:KV] B.safetensors[:KV] [PROMPT=2048] "
                 "[STEPS=16] [ROUNDS=40]\n");
    return 2;
  }
  int prompt = 2048, steps = 16, rounds = 40;
  if ((argc > 3 && !positive(argv[3], prompt)) || (argc > 4 && !positive(argv[4], steps)) ||
      (argc > 5 && !positive(argv[5], rounds))) {
    std::fprintf(stderr, "decode_ab: PROMPT, STEPS and ROUNDS must be integers in [1, 2^20]\n");
    return 2;
  }
  try {
    Side side[2] = {load(argv[1]), load(argv[2])};
    const int64_t vocab = side[0].model->info().vocab_size;
    if (side[1].model->info().vocab_size != vocab) {
      std::fprintf(stderr, "decode_ab: the two models' vocabularies differ (%lld and %lld)\n",
                   static_cast<long long>(vocab),
                   static_cast<long long>(side[1].model->info().vocab_size));
      return 2;
    }
    std::mt19937 rng(1);
    std::vector<int32_t> tokens(static_cast<size_t>(prompt + steps * rounds));
    for (auto& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
    std::vector<hippo::Session> sessions;
    for (const Side& s : side) {
      sessions.emplace_back(s.model);
      sessions.back().prefill(std::span<const int32_t>(tokens.data(), static_cast<size_t>(prompt)));
    }
    std::vector<double> tps[2], ratio;
    size_t next[2] = {static_cast<size_t>(prompt), static_cast<size_t>(prompt)};
    for (int r = 0; r < rounds; ++r) {
      double t[2];
      for (int k = 0; k < 2; ++k) {
        const int i = (r % 2) ? 1 - k : k;  // A B, then B A
        const double c0 = hippo::bench::cpu_now_ms();
        for (int s = 0; s < steps; ++s) sessions[i].step(tokens[next[i]++]);
        t[i] = hippo::bench::cpu_now_ms() - c0;
        tps[i].push_back(steps * 1e3 / t[i]);
      }
      ratio.push_back(t[0] / t[1]);
    }
    for (int i = 0; i < 2; ++i)
      std::printf("%c: %s: median %.1f tokens/s (min %.1f, max %.1f)\n", 'A' + i,
                  side[i].label.c_str(), median(tps[i]),
                  *std::min_element(tps[i].begin(), tps[i].end()),
                  *std::max_element(tps[i].begin(), tps[i].end()));
    std::sort(ratio.begin(), ratio.end());
    std::printf("B/A tokens/s, per round: median %.3f (quartiles %.3f-%.3f), %d rounds of %d steps "
                "after a %d-token prompt, context up to %zu\n",
                median(ratio), ratio[ratio.size() / 4], ratio[ratio.size() * 3 / 4], rounds, steps,
                prompt, next[0]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "decode_ab: %s\n", e.what());
    return 1;
  }
}
