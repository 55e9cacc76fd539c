// The bodies of completion replies: one JSON object for a whole reply, or the server-sent
// event chunks of a streamed one (text_completion / chat.completion.chunk), OpenAI's format.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/serve/generation.h"

namespace hippo::serve {

struct ReplyMeta {
  std::string id;     // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;
  std::string model;
};

// Builds a whole reply from all deltas of a finished generation.
class WholeReply {
 public:
  WholeReply(const Generation& g, const Tokenizer& tok) : g_(g), tok_(tok), parts_(static_cast<size_t>(g.choices())) {}
  void add(const std::vector<Delta>& deltas);
  nlohmann::json json(const ReplyMeta& meta) const;

 private:
  const Generation& g_;
  const Tokenizer& tok_;
  struct Part {
    std::string text, finish_reason;
    std::vector<ScoredToken> tokens, echo_tokens;
  };
  std::vector<Part> parts_;
};

// One SSE event ("data: {...}\n\n") per delta, and the closing events.
std::string stream_chunk(const Delta& d, const Generation& g, const Tokenizer& tok,
                         const ReplyMeta& meta, bool first_of_choice);
std::string stream_usage_chunk(const Generation& g, const ReplyMeta& meta);
inline std::string sse(const nlohmann::json& j) { return "data: " + j.dump() + "\n\n"; }
inline constexpr const char* kStreamEnd = "data: [DONE]\n\n";

}  // namespace hippo::serve
