// hippo bench prefill: hippo::bench_prefill (include/hippo/bench.hpp).
#include <memory>

#include "apps/commands.h"
#include "hippo/bench.hpp"

namespace hippo::cli {

void add_bench_prefill(CLI::App& bench, std::function<int()>& run) {
  auto o = std::make_shared<BenchPrefillOptions>();
  auto* g = bench.add_subcommand(
      "prefill", "Prefill tokens/s and peak RSS by prompt length: 125M-shape H3, hybrid, "
                 "Transformer (random weights), chunked");
  g->add_option("-t,--threads", o->threads, "Threads")->capture_default_str()
      ->check(CLI::Range(1, 1024));
  g->add_option("--lengths", o->lengths, "Prompt lengths in tokens")->capture_default_str();
  g->add_option("--models", o->models, "h3, hybrid, transformer")->capture_default_str();
  g->add_option("--transformer-max", o->transformer_max,
                "Longest prompt for the Transformer (quadratic in the length)")->capture_default_str();
  g->add_option("--chunk", o->chunk, "Tokens per prefill chunk (0: the default)")
      ->capture_default_str();
  g->add_option("--repeat", o->repeat,
                "Runs of each (model, length), the models alternating (A B A B); CSV: medians")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  g->add_flag("--small", o->small, "A d=64, 2-layer shape (quick check)");
  g->add_option("--csv", o->csv, "Also write the rows to this CSV file");
  g->callback([&run, o] { run = [o] { bench_prefill(*o); return 0; }; });
}

}  // namespace hippo::cli
