#include "io/strict_json.h"

#include <functional>

#include "core/error.h"

namespace hippo {

using nlohmann::json;

std::string json_error_text(const std::exception& e) {
  std::string s = e.what();
  for (size_t at; (at = s.find("[json.exception.")) != std::string::npos;) {
    const size_t end = s.find("] ", at);
    if (end == std::string::npos) break;
    s.erase(at, end + 2 - at);
  }
  return s;
}

json parse_json_strict(std::string_view text, const std::string& source) {
  DuplicateKeyTracker keys;
  json j;
  try {
    j = json::parse(text.begin(), text.end(), std::ref(keys));
  } catch (const json::exception& e) {
    fail(source, ": not valid JSON: ", json_error_text(e));
  }
  HIPPO_CHECK(keys.duplicate().empty(), source, ": duplicate key '", keys.duplicate(),
              "' (a key may appear only once in an object)");
  return j;
}

}  // namespace hippo
