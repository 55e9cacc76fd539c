// hippo's one exception type. Every failure the library reports (a bad file, a wrong size, an
// option out of range) is a hippo::Error whose message names the file and the field at fault.
#pragma once
#include <stdexcept>

namespace hippo {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace hippo
