#pragma once
#include <string>

namespace hippo {

// Whole file as bytes; throws hippo::Error naming the file if it cannot be read.
std::string read_whole_file(const std::string& path);

}  // namespace hippo
