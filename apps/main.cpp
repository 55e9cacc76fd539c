#include <cstdio>
#include <filesystem>
#include <new>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "apps/commands.h"
#include "core/error.h"
#include "io/strict_json.h"

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
  } catch (const hippo::Error& e) {
    return error(hippo::json_error_text(e));  // a wrapped nlohmann text keeps no "[json...]"
  } catch (const std::bad_alloc&) {
    return error("out of memory while running `hippo " + cmd + "`");
  } catch (const std::filesystem::filesystem_error& e) {
    std::string m = e.code().message();
    if (!e.path1().empty()) m = e.path1().string() + ": " + m;
    if (!e.path2().empty()) m += " (and " + e.path2().string() + ")";
    return error(m + " (during `hippo " + cmd + "`)");
  } catch (const nlohmann::json::exception& e) {
    return error("invalid JSON data during `hippo " + cmd + "`: " + hippo::json_error_text(e));
  } catch (const std::invalid_argument&) {
    return error("a value is not a valid number (during `hippo " + cmd + "`)");
  } catch (const std::out_of_range&) {
    return error("a value is out of range (during `hippo " + cmd + "`)");
  } catch (const std::exception& e) {
    return error(e.what());
  }
}
