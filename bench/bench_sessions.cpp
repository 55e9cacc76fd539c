// Decoding many sessions of one model: each session stepped alone vs hippo::step_batch (one
// batched product for all sessions' projections). Public API only.
// Usage: bench_sessions MODEL [SESSIONS=8] [STEPS=32] [ROUNDS=5] [batched]
// (`batched` runs only step_batch, for profiling it: perf record -g bench_sessions M 8 64 5 batched)
// Sessions start at different positions (prompts of 8, 16, 24, ... tokens). A and B alternate
// (A B A B ...) so that machine load hits both alike; medians of the rounds are printed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "hippo/hippo.hpp"

using hippo::bench::median;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_sessions MODEL [SESSIONS=8] [STEPS=32] [ROUNDS=5] [batched]\n");
    return 2;
  }
  const int n = argc > 2 ? std::atoi(argv[2]) : 8;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 32;
  const int rounds = argc > 4 ? std::atoi(argv[4]) : 5;
  const bool only_batched = argc > 5 && std::string(argv[5]) == "batched";
  if (n < 1 || n > 4096 || steps < 1 || rounds < 1) {
    std::fprintf(stderr, "bench_sessions: SESSIONS must be in [1, 4096], STEPS and ROUNDS >= 1\n");
    return 2;
  }
  try {
    auto model = hippo::Model::load(argv[1]);
    std::vector<hippo::Session> base;
    for (int i = 0; i < n; ++i) {
      base.emplace_back(model, hippo::SamplingParams{0.0f, 0, 1.0f, 0});
      std::vector<int32_t> prompt(static_cast<size_t>(8 * (i + 1)));
      for (size_t j = 0; j < prompt.size(); ++j) prompt[j] = static_cast<int32_t>((j * 31 + i) % 200);
      base.back().prefill(prompt);
    }
    auto run = [&](bool batched) {
      std::vector<hippo::Session> s;
      for (auto& b : base) s.push_back(b.fork());
      std::vector<hippo::Session*> ptrs;
      for (auto& x : s) ptrs.push_back(&x);
      std::vector<int32_t> next(s.size());
      const auto t0 = std::chrono::steady_clock::now();
      for (int t = 0; t < steps; ++t) {
        for (size_t i = 0; i < s.size(); ++i) next[i] = s[i].sample();
        if (batched) {
          hippo::step_batch(ptrs, next);
        } else {
          for (size_t i = 0; i < s.size(); ++i) s[i].step(next[i]);
        }
      }
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    if (!only_batched) run(false);
    run(true);  // warm-up
    std::vector<double> alone, batched;
    for (int r = 0; r < rounds; ++r) {
      alone.push_back(only_batched ? 1.0 : run(false));
      batched.push_back(run(true));
    }
    const double tokens = static_cast<double>(n) * steps;
    const double a = median(alone), b = median(batched);
    std::printf("model %s (%s, %lld params), %d sessions x %d steps, %d threads, %d rounds A B A B\n",
                argv[1], model->info().layers.c_str(),
                static_cast<long long>(model->info().num_params), n, steps, hippo::num_threads(),
                rounds);
    std::printf("each alone:  %8.1f tokens/s (median %.3f s)\n", tokens / a, a);
    std::printf("step_batch:  %8.1f tokens/s (median %.3f s)  %.2fx\n", tokens / b, b, a / b);
  } catch (const hippo::Error& e) {
    std::fprintf(stderr, "bench_sessions: %s\n", e.what());
    return 1;
  }
}
