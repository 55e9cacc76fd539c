// Bounds on what one request may ask for, so that no request can make the server allocate
// without bound: every count is checked against these before any work (400 otherwise).
#pragma once
#include <cstdint>

namespace hippo::serve {

struct Limits {
  int max_tokens = 4096;           // max_tokens per choice
  int max_prompt_tokens = 8192;    // tokens of one prompt (after tokenizing)
  int max_n = 16;                  // choices per prompt (n)
  int max_prompts = 64;            // prompts in one completions request (a list)
  int max_sequences = 64;          // prompts x n
  int max_stop = 4;                // stop strings (as OpenAI)
  int max_stop_bytes = 256;        // bytes of one stop string
  int max_logprobs = 20;           // top log-probabilities per token
  int max_messages = 256;          // chat messages
  int64_t max_body_bytes = 8 << 20;  // request body (HTTP 413 beyond)
};

}  // namespace hippo::serve
