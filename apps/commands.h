// Each subcommand of `hippo` lives in its own apps/cmd_*.cpp and adds itself to the app.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace hippo::cli {

// Registered subcommands; main() parses, then runs the one chosen.
void add_bench(CLI::App& app, std::function<int()>& run);
void add_train(CLI::App& app, std::function<int()>& run);
void add_synth(CLI::App& app, std::function<int()>& run);
void add_eval(CLI::App& app, std::function<int()>& run);
void add_tokenize(CLI::App& app, std::function<int()>& run);
void add_generate(CLI::App& app, std::function<int()>& run);
void add_convert(CLI::App& app, std::function<int()>& run);
void add_serve(CLI::App& app, std::function<int()>& run);

}  // namespace hippo::cli
