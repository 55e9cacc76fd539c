#pragma once
#include <string>

namespace hippo {

// Whole file as bytes; throws hippo::Error naming the file if it cannot be opened or read, or
// is not a regular file (a directory, a device such as /dev/zero, a pipe): those would read
// as empty or never end.
std::string read_whole_file(const std::string& path);

}  // namespace hippo
