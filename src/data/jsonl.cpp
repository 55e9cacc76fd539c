#include "data/jsonl.h"

#include <filesystem>

#include "core/error.h"
#include "io/strict_json.h"

namespace hippo {

bool is_jsonl_path(const std::string& path) {
  return std::filesystem::path(path).extension() == ".jsonl";
}

std::vector<JsonlRecord> parse_jsonl_texts(std::string_view content, const std::string& path) {
  std::vector<JsonlRecord> out;
  size_t line = 0;
  while (!content.empty()) {
    ++line;
    const size_t eol = content.find('\n');
    std::string_view text = content.substr(0, eol);
    content.remove_prefix(eol == std::string_view::npos ? content.size() : eol + 1);
    out.push_back({line, parse_jsonl_line(text, str(path, ":", line))});
  }
  return out;
}

std::string parse_jsonl_line(std::string_view text, const std::string& where) {
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  HIPPO_CHECK(text.find_first_not_of(" \t") != std::string_view::npos, where,
              ": empty line; each line must be a JSON object with a \"text\" string");
  const nlohmann::json j = parse_json_strict(text, where);
  HIPPO_CHECK(j.is_object(), where, ": a JSON ", j.type_name(),
              ", not an object with a \"text\" string");
  const auto it = j.find("text");
  HIPPO_CHECK(it != j.end(), where, ": no \"text\" field");
  HIPPO_CHECK(it->is_string(), where, ": \"text\" is a ", it->type_name(), ", not a string");
  return it->get<std::string>();
}

}  // namespace hippo
