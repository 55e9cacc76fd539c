#include <cstdio>

#include "apps/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"hippo: H3 and state-space language models on the CPU"};
  app.require_subcommand(1);
  std::function<int()> run;
  hippo::cli::add_bench(app, run);
  hippo::cli::add_train(app, run);
  hippo::cli::add_synth(app, run);
  hippo::cli::add_eval(app, run);
  hippo::cli::add_tokenize(app, run);
  hippo::cli::add_generate(app, run);
  hippo::cli::add_convert(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run ? run() : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hippo: error: %s\n", e.what());
    return 1;
  }
}
