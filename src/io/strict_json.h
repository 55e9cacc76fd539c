// JSON parsing for files a user writes (model configs, `tokenize --jsonl` lines): syntax errors
// and duplicate keys become hippo::Error naming the source, in words rather than nlohmann's
// "[json.exception.parse_error.101] ..." text. nlohmann keeps the last of duplicate keys
// silently, which would make `{"d_model": 64, "d_model": 4096}` mean whatever came last.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace hippo {

// Parses `text`; throws hippo::Error "<source>: not valid JSON: ..." or
// "<source>: duplicate key 'k' in ...".
nlohmann::json parse_json_strict(std::string_view text, const std::string& source);

// An exception's text without nlohmann's "[json.exception.<kind>.<id>] " tags (anywhere in it,
// so that a message that wrapped one reads cleanly too).
std::string json_error_text(const std::exception& e);

}  // namespace hippo
