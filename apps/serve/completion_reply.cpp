#include "apps/serve/completion_reply.h"

namespace hippo::serve {

using nlohmann::json;

void WholeReply::add(const std::vector<Delta>& deltas) {
  for (const auto& d : deltas) {
    Part& p = parts_[static_cast<size_t>(d.index)];
    p.text += d.text;
    p.tokens.insert(p.tokens.end(), d.tokens.begin(), d.tokens.end());
    p.echo_tokens.insert(p.echo_tokens.end(), d.echo_tokens.begin(), d.echo_tokens.end());
    if (!d.finish_reason.empty()) p.finish_reason = d.finish_reason;
  }
}

namespace {

json completions_logprobs_of(const std::vector<ScoredToken>& echo, const std::vector<ScoredToken>& gen,
                             const Tokenizer& tok) {
  json e = completion_logprobs(echo, tok, /*first_unscored=*/true, 0);
  int64_t off = 0;
  for (const auto& t : echo) off += static_cast<int64_t>(token_text(t.token, tok).size());
  json g = completion_logprobs(gen, tok, false, off);
  for (const char* k : {"tokens", "token_logprobs", "top_logprobs", "text_offset", "token_ids"})
    for (auto& v : g[k]) e[k].push_back(v);
  return e;
}

}  // namespace

json WholeReply::json(const ReplyMeta& meta) const {
  const bool chat = g_.request().chat;
  const bool lp = g_.request().logprobs >= 0;
  nlohmann::json choices = nlohmann::json::array();
  for (size_t i = 0; i < parts_.size(); ++i) {
    const Part& p = parts_[i];
    nlohmann::json c = {{"index", i}, {"finish_reason", p.finish_reason}};
    if (chat) {
      c["message"] = {{"role", "assistant"}, {"content", p.text}};
      c["logprobs"] = lp ? chat_logprobs(p.tokens, tok_) : nlohmann::json(nullptr);
    } else {
      c["text"] = p.text;
      c["logprobs"] = lp ? completions_logprobs_of(p.echo_tokens, p.tokens, tok_) : nlohmann::json(nullptr);
    }
    choices.push_back(std::move(c));
  }
  return {{"id", meta.id},
          {"object", chat ? "chat.completion" : "text_completion"},
          {"created", meta.created},
          {"model", meta.model},
          {"system_fingerprint", "hippo"},
          {"choices", choices},
          {"usage", usage_json(g_.usage())}};
}

std::string stream_chunk(const Delta& d, const Generation& g, const Tokenizer& tok,
                         const ReplyMeta& meta, bool first_of_choice) {
  const bool chat = g.request().chat;
  const bool lp = g.request().logprobs >= 0;
  json c = {{"index", d.index}};
  c["finish_reason"] = d.finish_reason.empty() ? json(nullptr) : json(d.finish_reason);
  if (chat) {
    json delta = json::object();
    if (first_of_choice) delta["role"] = "assistant";
    if (!d.text.empty() || first_of_choice) delta["content"] = d.text;
    c["delta"] = delta;
    c["logprobs"] = lp && !d.tokens.empty() ? chat_logprobs(d.tokens, tok) : json(nullptr);
  } else {
    c["text"] = d.text;
    c["logprobs"] = lp && (!d.tokens.empty() || !d.echo_tokens.empty())
                        ? completions_logprobs_of(d.echo_tokens, d.tokens, tok)
                        : json(nullptr);
  }
  return sse({{"id", meta.id},
              {"object", chat ? "chat.completion.chunk" : "text_completion"},
              {"created", meta.created},
              {"model", meta.model},
              {"system_fingerprint", "hippo"},
              {"choices", json::array({c})}});
}

std::string stream_usage_chunk(const Generation& g, const ReplyMeta& meta) {
  const bool chat = g.request().chat;
  return sse({{"id", meta.id},
              {"object", chat ? "chat.completion.chunk" : "text_completion"},
              {"created", meta.created},
              {"model", meta.model},
              {"choices", json::array()},
              {"usage", usage_json(g.usage())}});
}

}  // namespace hippo::serve
