// Where a command may write its output file: never over one of its inputs, and over an
// existing file only when that file is of the kind the command writes (a user's model, notes
// or checkpoint must not be replaced by a state file or a converted model).
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hippo {

// Throws hippo::Error naming `option` (e.g. "--save-state") and `out` when:
// - `out` is one of `inputs` (the same file, compared with std::filesystem::equivalent, so
//   symlinks and hard links count too), or an existing directory or non-regular file;
// - `out` exists and `same_kind(out)` returns a non-empty reason why it may not be replaced
//   (`kind` names what the command writes, for the message).
// A missing `out` is fine (the write itself reports an unwritable folder).
void check_output_path(const std::string& out, const std::string& option,
                       const std::vector<std::string>& inputs, const std::string& kind,
                       const std::function<std::string(const std::string&)>& same_kind);

// The __metadata__ of a safetensors file, reading and validating only its header; nullopt when
// `path` is not a readable safetensors file.
std::optional<std::map<std::string, std::string>> read_safetensors_metadata(const std::string& path);

}  // namespace hippo
