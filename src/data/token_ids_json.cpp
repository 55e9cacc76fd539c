#include "data/token_ids_json.h"

#include <climits>

#include "core/error.h"

namespace hippo {

// Element by element rather than j.get<std::vector<int32_t>>(): nlohmann converts true to 1,
// 1.5 to 1, wraps 4294967361 to 65 ("A"), converts 4.3e19 to int with undefined behaviour
// (found by fuzz/fuzz_tokenizer.cpp), and throws its own type_error for a string.
std::vector<int32_t> token_ids_from_json(const nlohmann::json& j, size_t line) {
  HIPPO_CHECK(j.is_array(), "tokenize --jsonl --decode: line ", line, " is not an array");
  std::vector<int32_t> ids;
  ids.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const nlohmann::json& v = j[i];
    bool ok = v.is_number_integer();  // not a bool, not a float
    int64_t x = 0;
    if (ok && v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      ok = u <= static_cast<uint64_t>(INT32_MAX);
      x = static_cast<int64_t>(u);
    } else if (ok) {
      x = v.get<int64_t>();
      ok = x >= INT32_MIN && x <= INT32_MAX;
    }
    HIPPO_CHECK(ok, "tokenize --jsonl --decode: line ", line, ", entry ", i, ": ",
                v.is_primitive() ? v.dump() : std::string(v.is_array() ? "an array" : "an object"),
                " is not a token id (an integer in ", INT32_MIN, "..", INT32_MAX, ")");
    ids.push_back(static_cast<int32_t>(x));
  }
  return ids;
}

}  // namespace hippo
