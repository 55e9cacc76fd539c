// Helpers shared by the test files: a per-test temporary folder and the message of an Error.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"

namespace hippo::test_util {

// A fresh folder, removed at the end of the scope. The name carries the process id and the
// object's address: ctest runs tests side by side, and one test may hold two folders.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() /
           str("hippo_", tag, "_", ::getpid(), "_", reinterpret_cast<uintptr_t>(this));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// The what() of the hippo::Error that f throws, or "" when it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// data/gpt2 (scripts/get_gpt2_vocab.sh), or "" when absent: $HIPPO_GPT2_DIR, else in the
// source tree of this file, else in the working folder or above it (ctest runs in build/tests,
// and with ccache's base_dir __FILE__ is relative).
inline std::string find_gpt2_dir() {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("HIPPO_GPT2_DIR")) candidates.emplace_back(env);
  candidates.push_back(fs::path(__FILE__).parent_path().parent_path() / "data" / "gpt2");
  for (fs::path p = fs::current_path(); !p.empty(); p = p.parent_path()) {
    candidates.push_back(p / "data" / "gpt2");
    if (p == p.parent_path()) break;
  }
  for (const fs::path& c : candidates)
    if (fs::exists(c / "encoder.json") && fs::exists(c / "vocab.bpe")) return c.string();
  return "";
}

}  // namespace hippo::test_util
