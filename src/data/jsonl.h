// JSONL corpora: one JSON object per line, its text in the "text" field (the form most
// published corpora ship in). A line that is not such an object is an Error naming the file
// and the line, never skipped: training on the raw bytes of the JSON, as hippo once did, or on
// what is left after dropping lines, would be a silent wrong answer.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace hippo {

// Whether `path` names a JSONL file (by its extension, .jsonl).
bool is_jsonl_path(const std::string& path);

struct JsonlRecord {
  size_t line = 0;  // 1-based
  std::string text;
};

// The "text" of every line of `content` (the file `path`, for messages). Throws hippo::Error
// "<path>:<line>: ..." for a line that is not valid JSON, not an object, has no "text" field or
// a "text" that is not a string. Blank lines are refused too (an empty record is written as
// {"text": ""}). Other fields are ignored.
std::vector<JsonlRecord> parse_jsonl_texts(std::string_view content, const std::string& path);

// The "text" of one line (without its '\n'); `where` is "<path>:<line>" for the same errors.
std::string parse_jsonl_line(std::string_view line, const std::string& where);

}  // namespace hippo
