// A completions or chat request, parsed and validated into a plain struct before any work:
// every field has the JSON type the OpenAI API gives it, every count is within Limits, prompts
// are tokenized and their ids checked. Anything else is an ApiError (400) naming the field.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apps/serve/limits.h"
#include "hippo/tokenizer.hpp"

namespace hippo::serve {

// What the model can take, from its config.
struct ModelLimits {
  int vocab_size = 0;         // ids in [0, vocab_size) (and below the tokenizer's size)
  int64_t max_position = 0;   // 0: no limit (SSM and rotary models); else prompt + tokens <= it
};

struct CompletionRequest {
  bool chat = false;
  std::string model;                             // echoed back; any name is accepted
  std::vector<std::vector<int32_t>> prompts;     // tokenized (chat: the templated conversation)
  std::vector<std::string> prompt_texts;         // their text, for echo
  int max_tokens = 16;
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = 0;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  int n = 1;
  bool stream = false;
  bool echo = false;
  int logprobs = -1;          // alternatives per token (-1: no log-probabilities)
  std::string session_id;     // hippo extension: continue from and save to a named state
};

// Parses a POST /v1/completions body.
CompletionRequest parse_completion_request(std::string_view body, const Tokenizer& tok,
                                           const Limits& limits, const ModelLimits& model);
// Parses a POST /v1/chat/completions body (messages through the chat template).
CompletionRequest parse_chat_request(std::string_view body, const Tokenizer& tok,
                                     const Limits& limits, const ModelLimits& model);

// POST /tokenize {"content": text} and POST /detokenize {"tokens": [ids]}.
std::vector<int32_t> parse_tokenize_request(std::string_view body, const Tokenizer& tok,
                                            const Limits& limits);
std::vector<int32_t> parse_detokenize_request(std::string_view body, const Limits& limits,
                                              const ModelLimits& model);

}  // namespace hippo::serve
