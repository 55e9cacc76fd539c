#include "io/strict_json.h"

#include <set>
#include <vector>

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
  // A stack of the keys seen in each open object; an array pushes nothing.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto track_keys = [&](int, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (ev == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (ev == json::parse_event_t::key && !open_objects.empty() && duplicate.empty()) {
      const std::string k = parsed.get<std::string>();
      if (!open_objects.back().insert(k).second) duplicate = k;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text.begin(), text.end(), track_keys);
  } catch (const json::exception& e) {
    fail(source, ": not valid JSON: ", json_error_text(e));
  }
  HIPPO_CHECK(duplicate.empty(), source, ": duplicate key '", duplicate,
              "' (a key may appear only once in an object)");
  return j;
}

}  // namespace hippo
