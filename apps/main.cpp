#include <cstdio>
#include <string>

#include "apps/commands.h"
#include "hippo/tools.hpp"

namespace {

// "train", "bench gemm": the subcommand chain the user ran, for messages without context.
std::string command_of(const CLI::App& app) {
  std::string s;
  for (const CLI::App* a = &app; !a->get_subcommands().empty();) {
    a = a->get_subcommands().front();
    s += (s.empty() ? "" : " ") + a->get_name();
  }
  return s;
}

int error(const std::string& message) {
  std::fprintf(stderr, "hippo: error: %s\n", message.c_str());
  return 1;
}

}  // namespace

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
  hippo::cli::add_serve(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // Errors are meant to reach here as hippo::Error naming the file and field. Library
  // exceptions that slip through are translated, never printed as their raw what() text.
  const std::string cmd = command_of(app);
  try {
    return run ? run() : 0;
  } catch (...) {
    return error(hippo::current_exception_message(cmd));
  }
}
