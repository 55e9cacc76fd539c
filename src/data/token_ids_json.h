// Token ids given as JSON: one line of `hippo tokenize --decode --jsonl`, an array of ids. Kept
// out of apps/cmd_tokenize.cpp so that the fuzz target (fuzz/fuzz_tokenizer.cpp) reaches it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace hippo {

// The ids of `j`, which must be an array of integers in [0, vocab); throws hippo::Error naming
// stdin line `line` and the element otherwise.
std::vector<int32_t> token_ids_from_json(const nlohmann::json& j, int32_t vocab, size_t line);

}  // namespace hippo
