#include "data/token_ids_json.h"

#include "core/error.h"

namespace hippo {

// Element by element rather than j.get<std::vector<int32_t>>(): nlohmann converts true to 1,
// truncates 65.7 to 65, wraps 4294967361 to 65 ("A"), converts 4.3e19 to int with undefined
// behaviour (found by fuzz/fuzz_tokenizer.cpp) and throws its own type_error for a string.
std::vector<int32_t> token_ids_from_json(const nlohmann::json& j, int32_t vocab, size_t line) {
  HIPPO_CHECK(j.is_array(), "tokenize --jsonl --decode: line ", line, " is not an array of token ids");
  std::vector<int32_t> ids;
  ids.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const nlohmann::json& v = j[i];
    const bool ok = v.is_number_unsigned() && v.get<uint64_t>() < static_cast<uint64_t>(vocab);
    HIPPO_CHECK(ok, "tokenize --jsonl --decode: line ", line, ", element ", i, ": ",
                v.is_primitive() ? v.dump() : std::string(v.is_array() ? "an array" : "an object"),
                " is not a token id (an integer in 0..", vocab - 1, ")");
    ids.push_back(static_cast<int32_t>(v.get<uint64_t>()));
  }
  return ids;
}

}  // namespace hippo
