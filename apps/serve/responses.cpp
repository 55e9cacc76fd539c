#include "apps/serve/responses.h"

#include <span>

#include "apps/serve/utf8.h"

namespace hippo::serve {

using nlohmann::json;

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

std::string token_text(int32_t id, const Tokenizer& tok) {
  return valid_utf8(tok.decode(std::span<const int32_t>(&id, 1)));
}

json completion_logprobs(const std::vector<ScoredToken>& tokens, const Tokenizer& tok,
                         bool first_unscored, int64_t offset0) {
  json toks = json::array(), lps = json::array(), tops = json::array(), offs = json::array(),
       ids = json::array();
  int64_t off = offset0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto& t = tokens[i];
    const std::string text = token_text(t.token, tok);
    toks.push_back(text);
    ids.push_back(t.token);
    offs.push_back(off);
    off += static_cast<int64_t>(text.size());
    if (i == 0 && first_unscored) {
      lps.push_back(nullptr);
      tops.push_back(nullptr);
      continue;
    }
    lps.push_back(t.logprob);
    json top = json::object();
    for (const auto& [id, lp] : t.top) {
      const std::string k = token_text(id, tok);
      if (!top.contains(k)) top[k] = lp;
    }
    tops.push_back(top);
  }
  return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs},
          {"token_ids", ids}};
}

namespace {

json bytes_of(const std::string& raw) {
  json b = json::array();
  for (unsigned char c : raw) b.push_back(static_cast<int>(c));
  return b;
}

}  // namespace

json chat_logprobs(const std::vector<ScoredToken>& tokens, const Tokenizer& tok) {
  json content = json::array();
  for (const auto& t : tokens) {
    const std::string raw = tok.decode(std::span<const int32_t>(&t.token, 1));
    json top = json::array();
    for (const auto& [id, lp] : t.top) {
      const std::string r = tok.decode(std::span<const int32_t>(&id, 1));
      top.push_back({{"token", valid_utf8(r)}, {"logprob", lp}, {"bytes", bytes_of(r)}});
    }
    content.push_back({{"token", valid_utf8(raw)}, {"logprob", t.logprob}, {"bytes", bytes_of(raw)},
                       {"top_logprobs", top}});
  }
  return {{"content", content}};
}

}  // namespace hippo::serve
