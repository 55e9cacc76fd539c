// The JSON objects of OpenAI replies: completion and chat choices (whole or streamed chunks),
// log-probabilities in both APIs' formats, usage.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/serve/job.h"
#include "hippo/tokenizer.hpp"

namespace hippo::serve {

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};
nlohmann::json usage_json(const Usage& u);

// Completions: {"tokens", "token_logprobs", "top_logprobs", "text_offset"} for `tokens`, the
// first of which has no log-probability when `first_unscored` (the prompt's first token).
// Text offsets count bytes of the returned text from `offset0`. "token_ids" (a hippo extension)
// lists the ids themselves, e.g. to continue a saved session with exactly these tokens.
nlohmann::json completion_logprobs(const std::vector<ScoredToken>& tokens, const Tokenizer& tok,
                                   bool first_unscored, int64_t offset0);
// Chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}.
nlohmann::json chat_logprobs(const std::vector<ScoredToken>& tokens, const Tokenizer& tok);

// A token's text for display (invalid UTF-8 replaced).
std::string token_text(int32_t id, const Tokenizer& tok);

}  // namespace hippo::serve
