// Errors: every user-facing failure is a hippo::Error whose message names the file and
// field at fault; the CLI prints it and exits non-zero.
#pragma once
#include <sstream>
#include <string>

#include "hippo/error.hpp"  // hippo::Error: one type for the library and its public API

namespace hippo {

template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(str(args...));
}

}  // namespace hippo

// Checks that stay on in release builds: they guard shapes and user input, not hot loops.
#define HIPPO_CHECK(cond, ...)                          \
  do {                                                  \
    if (!(cond)) ::hippo::fail(__VA_ARGS__);            \
  } while (0)
