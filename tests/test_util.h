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

// data/NAME in the source tree (scripts/get_brown.sh, get_gpt2_vocab.sh put data there). From
// CMake's HIPPO_SOURCE_DIR, not __FILE__: with ccache's base_dir __FILE__ is relative to the
// build folder, and the tests that looked there skipped.
inline std::filesystem::path source_data_dir(const char* name) {
  return std::filesystem::path(HIPPO_SOURCE_DIR) / "data" / name;
}

// data/gpt2 (scripts/get_gpt2_vocab.sh), or "" when absent: $HIPPO_GPT2_DIR, else in the
// source tree, else in the working folder or above it.
inline std::string find_gpt2_dir() {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("HIPPO_GPT2_DIR")) candidates.emplace_back(env);
  candidates.push_back(source_data_dir("gpt2"));
  for (fs::path p = fs::current_path(); !p.empty(); p = p.parent_path()) {
    candidates.push_back(p / "data" / "gpt2");
    if (p == p.parent_path()) break;
  }
  for (const fs::path& c : candidates)
    if (fs::exists(c / "encoder.json") && fs::exists(c / "vocab.bpe")) return c.string();
  return "";
}

}  // namespace hippo::test_util
