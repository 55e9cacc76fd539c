// hippo::convert_checkpoint (include/hippo/train.hpp): converts a released H3 PyTorch
// checkpoint with scripts/convert_h3.py, which needs PyTorch. The script is looked up next to
// the executable's tree, then in the source tree this was built from; HIPPO_CONVERT_SCRIPT and
// HIPPO_TORCH_PYTHON (default /usr/bin/python3) override.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "hippo/train.hpp"
#include "io/output_path.h"
#include "io/run_dir.h"
#include "models/load.h"
#include "models/q8_weights.h"

namespace hippo {

namespace {

namespace fs = std::filesystem;

// Range of the count options (CLI11 already refuses non-numbers and values <= 0).
constexpr int kMaxHeads = 1 << 12, kMaxVocab = 1 << 24;

// Why an existing output file may not be replaced ("" if it may): only hippo weights (what
// convert writes) are replaced; a training checkpoint also holds optimizer state.
std::string not_replaceable(const std::string& path) {
  const auto meta = read_safetensors_metadata(path);
  if (!meta) return "is not hippo weights (not a safetensors file)";
  auto f = meta->find("format");
  if (f == meta->end() || f->second != "hippo")
    return "is not hippo weights (__metadata__.format " +
           (f == meta->end() ? std::string("missing") : "\"" + f->second + "\"") + ")";
  if (meta->count("optim.step"))
    return "is a training checkpoint (it holds optimizer state), not plain hippo weights";
  return "";
}

// Identity of a file's current version: a rename over it (how the converter writes) changes
// the inode, a rewrite in place the modification time.
struct FileStamp {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  timespec mtime{};
  bool operator==(const FileStamp& o) const {
    return exists == o.exists && dev == o.dev && ino == o.ino && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec;
  }
};
FileStamp stamp_of(const std::string& path) {
  struct stat sb;
  FileStamp s;
  if (::stat(path.c_str(), &sb) != 0) return s;
  s.exists = true;
  s.dev = sb.st_dev;
  s.ino = sb.st_ino;
  s.mtime = sb.st_mtim;
  return s;
}

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
  candidates.push_back(fs::path(__FILE__).parent_path() / ".." / ".." / "scripts" / "convert_h3.py");
  for (auto& c : candidates)
    if (fs::is_regular_file(c, ec)) return fs::weakly_canonical(c, ec).string();
  std::string tried;
  for (auto& c : candidates) tried += "\n  " + c.lexically_normal().string();
  fail("convert: cannot find convert_h3.py; tried:", tried, "\n(set HIPPO_CONVERT_SCRIPT)");
}

// q8: the fp32 hippo weights in `in` quantized into `out`, every __metadata__ entry (config,
// tokenizer) kept. The input must hold fp32 weights.
void write_q8(const std::string& in, const std::string& out) {
  std::map<std::string, std::string> meta;
  auto model = load_model_mapped(in, &meta);
  for (auto& p : model->params())
    HIPPO_CHECK(!p.param->has_stored(), "convert: ", in, ": tensor '", p.name,
                "' is not fp32; --dtype q8 needs fp32 weights");
  meta.erase("weights");
  save_weights_q8(out, *model, meta);
}

}  // namespace

void convert_checkpoint(const ConvertOptions& o) {
  HIPPO_CHECK(o.dtype == "fp32" || o.dtype == "bf16" || o.dtype == "q8",
              "--dtype must be fp32, bf16 or q8, got ", o.dtype);
  const bool q8 = o.dtype == "q8";
  HIPPO_CHECK(o.heads >= 0 && o.heads <= kMaxHeads, "--heads must be in [1, ", kMaxHeads, "], got ", o.heads);
  HIPPO_CHECK(o.vocab_size >= 0 && o.vocab_size <= kMaxVocab, "--vocab-size must be in [1, ", kMaxVocab, "], got ",
              o.vocab_size);
  std::error_code ec;
  HIPPO_CHECK(fs::is_regular_file(o.input, ec), "convert: input ", o.input,
              fs::exists(o.input, ec) ? ": not a regular file" : ": no such file");
  check_output_path(o.output, "convert: output", {o.input}, "the converted weights",
                    not_replaceable);
  remove_stale_temp_files_of(o.output);  // left by a killed earlier conversion
  // hippo's own fp32 weights (hippo train's output) need no PyTorch: quantized here.
  if (o.input.size() > 12 && o.input.substr(o.input.size() - 12) == ".safetensors") {
    HIPPO_CHECK(q8, "convert: ", o.input, " is hippo safetensors; only --dtype q8 converts those");
    HIPPO_CHECK(o.heads == 0 && o.vocab_size == 0 && o.tokenizer.empty(), "convert: --heads, "
                "--vocab-size and --tokenizer apply to PyTorch checkpoints, not ", o.input);
    write_q8(o.input, o.output);
    std::printf("wrote %s (q8 linear and embedding weights)\n", o.output.c_str());
    return;
  }
  // q8 from PyTorch: the converter writes fp32 next to the output, quantized from there.
  const std::string py_out = q8 ? o.output + ".fp32.tmp" : o.output;

  const char* py_env = std::getenv("HIPPO_TORCH_PYTHON");
  const std::string python = py_env ? py_env : "/usr/bin/python3";
  // Named the way the user can fix it: the variable when it is set.
  const std::string who = py_env ? str("HIPPO_TORCH_PYTHON=", python) : python;
  HIPPO_CHECK(fs::is_regular_file(python, ec) && ::access(python.c_str(), X_OK) == 0, "convert: ",
              who, fs::exists(python, ec) ? " is not an executable file" : " does not exist",
              "; the converter needs a Python with PyTorch (set HIPPO_TORCH_PYTHON)");
  const std::string script = find_script();
  std::vector<std::string> args = {python, script, o.input, py_out, "--dtype",
                                   q8 ? std::string("fp32") : o.dtype};
  if (o.heads > 0) args.insert(args.end(), {"--heads", std::to_string(o.heads)});
  if (o.vocab_size > 0) args.insert(args.end(), {"--vocab-size", std::to_string(o.vocab_size)});
  if (!o.tokenizer.empty()) args.insert(args.end(), {"--tokenizer", o.tokenizer});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (q8) fs::remove(py_out, ec);
  const FileStamp before = stamp_of(py_out);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  HIPPO_CHECK(pid >= 0, "convert: fork failed: ", std::strerror(errno));
  if (pid == 0) {
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "hippo: error: convert: cannot run %s: %s\n", who.c_str(),
                 std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    HIPPO_CHECK(errno == EINTR, "convert: waitpid failed: ", std::strerror(errno));
  const std::string what = str("the converter (", who, " ", script, ")");
  if (WIFSIGNALED(status))
    fail("convert: ", what, " was killed by signal ", WTERMSIG(status), " (",
         strsignal(WTERMSIG(status)), ")");
  HIPPO_CHECK(WIFEXITED(status), "convert: ", what, " ended abnormally (wait status ", status, ")");
  const int code = WEXITSTATUS(status);
  if (code != 0)
    fail("convert: ", what, " failed with exit status ", code,
         code == 127 ? " (it could not be started)" : "", "; ", o.output, " was not written");
  // Exit 0 is not proof: a wrong HIPPO_TORCH_PYTHON (e.g. /bin/true) exits 0 doing nothing.
  const FileStamp after = stamp_of(py_out);
  HIPPO_CHECK(after.exists && !(after == before), "convert: ", what,
              " exited with status 0 but wrote no output to ", py_out);
  const std::string bad = not_replaceable(py_out);
  if (!bad.empty()) {
    fs::remove(py_out, ec);  // ours, and unusable
    fail("convert: ", what, " exited with status 0 but its output ", py_out, " ", bad,
         "; removed it");
  }
  if (q8) {
    try {
      write_q8(py_out, o.output);
    } catch (...) {
      fs::remove(py_out, ec);
      throw;
    }
    fs::remove(py_out, ec);
    std::printf("quantized to q8: %s\n", o.output.c_str());
  }
}


}  // namespace hippo
