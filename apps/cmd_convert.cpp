// `hippo convert IN.pt OUT.safetensors [--dtype fp32|bf16] [--heads N] [--vocab-size V]`:
// converts a released H3 PyTorch checkpoint with scripts/convert_h3.py, which needs PyTorch.
// The script is looked up next to the executable's tree, then in the source tree this was
// built from; HIPPO_CONVERT_SCRIPT and HIPPO_TORCH_PYTHON (default /usr/bin/python3) override.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "core/error.h"

namespace hippo::cli {

namespace {

namespace fs = std::filesystem;

struct ConvertOptions {
  std::string input, output, dtype = "fp32";
  int heads = 0, vocab_size = 0;
};

std::string find_script() {
  if (const char* env = std::getenv("HIPPO_CONVERT_SCRIPT")) {
    HIPPO_CHECK(fs::is_regular_file(env), "HIPPO_CONVERT_SCRIPT=", env, ": no such file");
    return env;
  }
  std::vector<fs::path> candidates;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path dir = exe.parent_path();
    // build/hippo -> scripts/, or an install prefix's bin/hippo -> share/hippo/.
    candidates.push_back(dir / ".." / "scripts" / "convert_h3.py");
    candidates.push_back(dir / ".." / "share" / "hippo" / "convert_h3.py");
  }
  candidates.push_back(fs::path(__FILE__).parent_path() / ".." / "scripts" / "convert_h3.py");
  for (auto& c : candidates)
    if (fs::is_regular_file(c, ec)) return fs::weakly_canonical(c, ec).string();
  std::string tried;
  for (auto& c : candidates) tried += "\n  " + c.lexically_normal().string();
  fail("convert: cannot find convert_h3.py; tried:", tried, "\n(set HIPPO_CONVERT_SCRIPT)");
}

int run_convert(const ConvertOptions& o) {
  const char* py_env = std::getenv("HIPPO_TORCH_PYTHON");
  const std::string python = py_env ? py_env : "/usr/bin/python3";
  HIPPO_CHECK(::access(python.c_str(), X_OK) == 0, "convert: ", python,
              " not found; the converter needs a Python with PyTorch (set HIPPO_TORCH_PYTHON)");
  std::vector<std::string> args = {python, find_script(), o.input, o.output, "--dtype", o.dtype};
  if (o.heads > 0) args.insert(args.end(), {"--heads", std::to_string(o.heads)});
  if (o.vocab_size > 0) args.insert(args.end(), {"--vocab-size", std::to_string(o.vocab_size)});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  HIPPO_CHECK(pid >= 0, "convert: fork failed: ", std::strerror(errno));
  if (pid == 0) {
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "hippo: error: convert: cannot run %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    HIPPO_CHECK(errno == EINTR, "convert: waitpid failed: ", std::strerror(errno));
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  fail("convert: the converter was killed by signal ", WTERMSIG(status));
}

}  // namespace

void add_convert(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<ConvertOptions>();
  auto* c = app.add_subcommand("convert", "Convert a released H3 PyTorch checkpoint (model.pt) to "
                                          "hippo safetensors (needs PyTorch)");
  c->add_option("input", o->input, "model.pt: a state_dict or a training checkpoint")->required();
  c->add_option("output", o->output, "output .safetensors file")->required();
  c->add_option("--dtype", o->dtype, "fp32, or bf16 for the linear and embedding weights")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  c->add_option("--heads", o->heads, "attention heads (default: the released models' value)")
      ->check(CLI::PositiveNumber);
  c->add_option("--vocab-size", o->vocab_size, "true vocabulary size (default from the embedding)")
      ->check(CLI::PositiveNumber);
  c->callback([o, &run] { run = [o] { return run_convert(*o); }; });
}

}  // namespace hippo::cli
