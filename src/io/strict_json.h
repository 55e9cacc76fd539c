// JSON parsing for files a user writes (model configs, `tokenize --jsonl` lines): syntax errors
// and duplicate keys become hippo::Error naming the source, in words rather than nlohmann's
// "[json.exception.parse_error.101] ..." text. nlohmann keeps the last of duplicate keys
// silently, which would make `{"d_model": 64, "d_model": 4096}` mean whatever came last.
#pragma once
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace hippo {

// A parser callback for nlohmann::json::parse that records the first key repeated within one
// object (a stack of key sets, one per open object); parse continues, the caller refuses after.
// Pass it by reference: `json::parse(b, e, std::ref(tracker))`.
class DuplicateKeyTracker {
 public:
  bool operator()(int, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::object_start) {
      open_objects_.emplace_back();
    } else if (ev == E::object_end) {
      if (!open_objects_.empty()) open_objects_.pop_back();
    } else if (ev == E::key && !open_objects_.empty() && duplicate_.empty()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!open_objects_.back().insert(k).second) duplicate_ = k;
    }
    return true;
  }
  // The first repeated key, or "" when there was none.
  const std::string& duplicate() const { return duplicate_; }

 private:
  std::vector<std::set<std::string>> open_objects_;
  std::string duplicate_;
};

// Parses `text`; throws hippo::Error "<source>: not valid JSON: ..." or
// "<source>: duplicate key 'k' in ...".
nlohmann::json parse_json_strict(std::string_view text, const std::string& source);

// An exception's text without nlohmann's "[json.exception.<kind>.<id>] " tags (anywhere in it,
// so that a message that wrapped one reads cleanly too).
std::string json_error_text(const std::exception& e);

}  // namespace hippo
