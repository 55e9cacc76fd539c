#include "io/output_path.h"

#include <filesystem>
#include <system_error>

#include "core/error.h"
#include "io/safetensors.h"

namespace hippo {

namespace fs = std::filesystem;

void check_output_path(const std::string& out, const std::string& option,
                       const std::vector<std::string>& inputs, const std::string& kind,
                       const std::function<std::string(const std::string&)>& same_kind) {
  HIPPO_CHECK(!out.empty(), option, ": the output path is empty");
  std::error_code ec;
  const fs::file_status st = fs::status(out, ec);  // follows symlinks
  if (!fs::exists(st)) return;
  for (const std::string& in : inputs) {
    std::error_code e2;
    if (!in.empty() && fs::equivalent(out, in, e2) && !e2)
      fail(option, " ", out, ": is an input of this command (", in,
           "); choose another output file");
  }
  HIPPO_CHECK(fs::is_regular_file(st), option, " ", out, ": exists and is not a regular file",
              fs::is_directory(st) ? " (a directory)" : "", "; give a file name");
  const std::string why = same_kind(out);
  HIPPO_CHECK(why.empty(), option, " ", out, ": exists and ", why, "; it would be replaced by ",
              kind, ". Remove it yourself or choose another output file");
}

std::optional<std::map<std::string, std::string>> read_safetensors_metadata(const std::string& path) {
  try {
    SafeTensorsReader st(path);
    return st.header().metadata;
  } catch (const Error&) {
    return std::nullopt;
  }
}

}  // namespace hippo
