// hippo bench gemm: hippo::bench_gemm (include/hippo/bench.hpp).
#include <memory>

#include "apps/commands.h"
#include "hippo/bench.hpp"

namespace hippo::cli {

void add_bench_prefill(CLI::App& bench, std::function<int()>& run);

void add_bench(CLI::App& app, std::function<int()>& run) {
  auto* bench = app.add_subcommand("bench", "Benchmarks (medians of several runs)");
  bench->require_subcommand(1);
  auto* g = bench->add_subcommand("gemm", "GEMM GFLOP/s on the model's shapes vs the FMA peak");
  auto o = std::make_shared<BenchGemmOptions>();
  g->add_option("-t,--threads", o->threads, "Threads")->capture_default_str()->check(CLI::Range(1, 1024));
  g->add_option("--reps", o->reps, "Repetitions (median reported)")->capture_default_str()
      ->check(CLI::Range(1, 100000));
  g->callback([&run, o] { run = [o] { bench_gemm(*o); return 0; }; });
  add_bench_prefill(*bench, run);
}

}  // namespace hippo::cli
