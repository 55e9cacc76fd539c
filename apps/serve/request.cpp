#include "apps/serve/request.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "apps/serve/api_error.h"
#include "apps/serve/chat_template.h"

namespace hippo::serve {

using nlohmann::json;

namespace {

constexpr int kMaxDepth = 32;  // JSON nesting accepted (prompts need 3)

// Refuses deep nesting before parsing, so that no body can make the parser or the destructor
// recurse deeply.
void check_depth(std::string_view body) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth)
        throw bad_request("", "the JSON body nests deeper than " + std::to_string(kMaxDepth) + " levels");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

json parse_object(std::string_view body) {
  check_depth(body);
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw bad_request("", "the request body is not valid JSON");
  if (!j.is_object()) throw bad_request("", "the request body must be a JSON object");
  return j;
}

// The field, or nullptr when absent or null (the default applies).
const json* field(const json& j, const char* name) {
  auto it = j.find(name);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

int64_t get_int(const json& j, const char* name, int64_t lo, int64_t hi, int64_t dflt) {
  const json* v = field(j, name);
  if (!v) return dflt;
  int64_t x;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi))
      throw bad_request(name, std::string(name) + " must be at most " + std::to_string(hi));
    x = v->get<int64_t>();
  } else if (v->is_number_float() && std::isfinite(v->get<double>()) &&
             v->get<double>() == std::floor(v->get<double>()) && std::fabs(v->get<double>()) < 9e15) {
    x = static_cast<int64_t>(v->get<double>());  // 16.0 is an integer in JSON's data model
  } else {
    throw bad_request(name, std::string(name) + " must be an integer");
  }
  if (x < lo || x > hi)
    throw bad_request(name, std::string(name) + " must be in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "], got " + std::to_string(x));
  return x;
}

double get_number(const json& j, const char* name, double lo, double hi, double dflt,
                  bool lo_open = false) {
  const json* v = field(j, name);
  if (!v) return dflt;
  if (!v->is_number()) throw bad_request(name, std::string(name) + " must be a number");
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi || (lo_open && x == lo))
    throw bad_request(name, std::string(name) + " must be in " + (lo_open ? "(" : "[") +
                                std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                std::to_string(x));
  return x;
}

bool get_bool(const json& j, const char* name, bool dflt) {
  const json* v = field(j, name);
  if (!v) return dflt;
  if (!v->is_boolean()) throw bad_request(name, std::string(name) + " must be true or false");
  return v->get<bool>();
}

std::string get_string(const json& j, const char* name, const std::string& dflt, size_t max_len) {
  const json* v = field(j, name);
  if (!v) return dflt;
  if (!v->is_string()) throw bad_request(name, std::string(name) + " must be a string");
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() > max_len)
    throw bad_request(name, std::string(name) + " is longer than " + std::to_string(max_len) + " bytes");
  return s;
}

// Text prompts are tokenized as `hippo generate` does: "<|endoftext|>" is the end-of-text id,
// and an empty prompt starts from end-of-text.
std::vector<int32_t> encode_prompt(const std::string& text, const Tokenizer& tok) {
  std::vector<int32_t> ids = tok.encode_with_special(text);
  if (ids.empty()) ids.push_back(tok.eot_id());
  return ids;
}

std::vector<int32_t> token_list(const json& arr, const char* name, const Tokenizer& tok,
                                const ModelLimits& model, size_t max_len) {
  if (arr.size() > max_len)
    throw bad_request(name, std::string(name) + " has more than " + std::to_string(max_len) + " tokens");
  const int64_t vocab = std::min<int64_t>(model.vocab_size, tok.vocab_size());
  std::vector<int32_t> ids;
  ids.reserve(arr.size());
  for (const auto& t : arr) {
    if (!t.is_number_integer())
      throw bad_request(name, std::string(name) + ": token ids must be integers");
    const int64_t id = t.is_number_unsigned() && t.get<uint64_t>() > (1ULL << 62) ? -1 : t.get<int64_t>();
    if (id < 0 || id >= vocab)
      throw bad_request(name, std::string(name) + ": token id " + t.dump() + " is outside [0, " +
                                  std::to_string(vocab) + ")");
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

void check_prompt_length(const std::vector<int32_t>& ids, const Limits& limits, const char* name) {
  if (ids.empty()) throw bad_request(name, std::string(name) + " is empty");
  if (ids.size() > static_cast<size_t>(limits.max_prompt_tokens))
    throw bad_request(name, std::string(name) + " has " + std::to_string(ids.size()) +
                                " tokens, more than the limit " + std::to_string(limits.max_prompt_tokens));
}

// Fields shared by both endpoints.
void parse_common(const json& j, const Limits& limits, CompletionRequest& r) {
  r.model = get_string(j, "model", "", 256);
  r.max_tokens = static_cast<int>(get_int(j, "max_tokens", 0, limits.max_tokens, r.max_tokens));
  r.temperature = static_cast<float>(get_number(j, "temperature", 0, 2, 1));
  r.top_p = static_cast<float>(get_number(j, "top_p", 0, 1, 1, /*lo_open=*/true));
  r.top_k = static_cast<int>(get_int(j, "top_k", -1, 1 << 30, 0));
  if (r.top_k < 0) r.top_k = 0;  // -1: no limit, as in vLLM
  if (field(j, "seed"))
    r.seed = static_cast<uint64_t>(get_int(j, "seed", std::numeric_limits<int64_t>::min(),
                                           std::numeric_limits<int64_t>::max(), 0));
  r.n = static_cast<int>(get_int(j, "n", 1, limits.max_n, 1));
  r.stream = get_bool(j, "stream", false);
  if (const json* so = field(j, "stream_options"); so && !so->is_object())
    throw bad_request("stream_options", "stream_options must be an object");
  if (const json* s = field(j, "stop")) {
    if (s->is_string()) {
      r.stop.push_back(s->get<std::string>());
    } else if (s->is_array()) {
      if (s->size() > static_cast<size_t>(limits.max_stop))
        throw bad_request("stop", "stop has more than " + std::to_string(limits.max_stop) + " strings");
      for (const auto& x : *s) {
        if (!x.is_string()) throw bad_request("stop", "stop must be a string or a list of strings");
        r.stop.push_back(x.get<std::string>());
      }
    } else {
      throw bad_request("stop", "stop must be a string or a list of strings");
    }
    for (const auto& x : r.stop)
      if (x.empty() || x.size() > static_cast<size_t>(limits.max_stop_bytes))
        throw bad_request("stop", "stop strings must be 1 to " + std::to_string(limits.max_stop_bytes) + " bytes");
  }
  for (const char* k : {"presence_penalty", "frequency_penalty"})
    if (get_number(j, k, -2, 2, 0) != 0)
      throw bad_request(k, std::string(k) + " is not supported (only 0)");
  if (const json* lb = field(j, "logit_bias"); lb && !(lb->is_object() && lb->empty()))
    throw bad_request("logit_bias", "logit_bias is not supported");
  r.session_id = get_string(j, "session_id", "", 64);
  if (!r.session_id.empty()) {
    for (char c : r.session_id)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        throw bad_request("session_id", "session_id must be 1-64 characters of [A-Za-z0-9_-]");
  }
}

void check_positions(const CompletionRequest& r, const ModelLimits& model) {
  if (model.max_position <= 0) return;
  for (const auto& p : r.prompts)
    if (static_cast<int64_t>(p.size()) + r.max_tokens > model.max_position)
      throw bad_request("max_tokens", "the prompt (" + std::to_string(p.size()) + " tokens) and max_tokens (" +
                                          std::to_string(r.max_tokens) + ") exceed the model's " +
                                          std::to_string(model.max_position) + " positions");
}

void check_sequences(const CompletionRequest& r, const Limits& limits) {
  if (r.prompts.size() * static_cast<size_t>(r.n) > static_cast<size_t>(limits.max_sequences))
    throw bad_request("n", std::to_string(r.prompts.size()) + " prompts times n=" + std::to_string(r.n) +
                               " is more than " + std::to_string(limits.max_sequences) + " sequences");
}

}  // namespace

CompletionRequest parse_completion_request(std::string_view body, const Tokenizer& tok,
                                           const Limits& limits, const ModelLimits& model) {
  const json j = parse_object(body);
  CompletionRequest r;
  parse_common(j, limits, r);
  r.echo = get_bool(j, "echo", false);
  r.logprobs = static_cast<int>(get_int(j, "logprobs", 0, limits.max_logprobs, -1));
  const json* p = field(j, "prompt");
  if (!p) throw bad_request("prompt", "prompt is required");
  const size_t max_len = static_cast<size_t>(limits.max_prompt_tokens);
  auto add_text = [&](const std::string& text) {
    r.prompts.push_back(encode_prompt(text, tok));
    r.prompt_texts.push_back(text);
  };
  auto add_ids = [&](const json& arr) {
    r.prompts.push_back(token_list(arr, "prompt", tok, model, max_len));
    if (r.prompts.back().empty()) throw bad_request("prompt", "prompt has an empty token list");
    r.prompt_texts.push_back(tok.decode(r.prompts.back()));
  };
  if (p->is_string()) {
    add_text(p->get<std::string>());
  } else if (p->is_array()) {
    if (p->empty()) throw bad_request("prompt", "prompt is an empty list");
    if ((*p)[0].is_number()) {
      add_ids(*p);
    } else {
      if (p->size() > static_cast<size_t>(limits.max_prompts))
        throw bad_request("prompt", "prompt has more than " + std::to_string(limits.max_prompts) + " entries");
      for (const auto& e : *p) {
        if (e.is_string()) add_text(e.get<std::string>());
        else if (e.is_array()) add_ids(e);
        else throw bad_request("prompt", "prompt must be a string, a list of strings, or token ids");
      }
    }
  } else {
    throw bad_request("prompt", "prompt must be a string, a list of strings, or token ids");
  }
  for (const auto& ids : r.prompts) check_prompt_length(ids, limits, "prompt");
  check_sequences(r, limits);
  check_positions(r, model);
  return r;
}

CompletionRequest parse_chat_request(std::string_view body, const Tokenizer& tok,
                                     const Limits& limits, const ModelLimits& model) {
  const json j = parse_object(body);
  CompletionRequest r;
  r.chat = true;
  r.max_tokens = std::min(256, limits.max_tokens);  // chat default (OpenAI's is "until done")
  r.max_tokens = static_cast<int>(get_int(j, "max_completion_tokens", 0, limits.max_tokens, r.max_tokens));
  parse_common(j, limits, r);
  if (get_bool(j, "logprobs", false))
    r.logprobs = static_cast<int>(get_int(j, "top_logprobs", 0, limits.max_logprobs, 0));
  const json* m = field(j, "messages");
  if (!m || !m->is_array() || m->empty()) throw bad_request("messages", "messages must be a non-empty list");
  if (m->size() > static_cast<size_t>(limits.max_messages))
    throw bad_request("messages", "more than " + std::to_string(limits.max_messages) + " messages");
  std::vector<ChatMessage> msgs;
  for (const auto& x : *m) {
    if (!x.is_object()) throw bad_request("messages", "each message must be an object");
    ChatMessage cm;
    cm.role = get_string(x, "role", "", 32);
    if (cm.role != "system" && cm.role != "user" && cm.role != "assistant" && cm.role != "developer")
      throw bad_request("messages", "message role must be system, developer, user or assistant");
    if (cm.role == "developer") cm.role = "system";
    const json* c = field(x, "content");
    if (c && c->is_string()) {
      cm.content = c->get<std::string>();
    } else if (c && c->is_array()) {  // content parts: text only
      for (const auto& part : *c) {
        if (!part.is_object() || get_string(part, "type", "", 16) != "text")
          throw bad_request("messages", "only text content parts are supported");
        cm.content += get_string(part, "text", "", static_cast<size_t>(limits.max_body_bytes));
      }
    } else if (c) {
      throw bad_request("messages", "message content must be a string or a list of text parts");
    }
    msgs.push_back(std::move(cm));
  }
  r.prompt_texts.push_back(apply_chat_template(msgs));
  r.prompts.push_back(encode_prompt(r.prompt_texts.back(), tok));
  r.stop.push_back(kChatStop);
  check_prompt_length(r.prompts.back(), limits, "messages");
  check_sequences(r, limits);
  check_positions(r, model);
  return r;
}

std::vector<int32_t> parse_tokenize_request(std::string_view body, const Tokenizer& tok,
                                            const Limits& limits) {
  const json j = parse_object(body);
  const json* c = field(j, "content");
  if (!c) c = field(j, "prompt");
  if (!c || !c->is_string()) throw bad_request("content", "content must be a string");
  std::vector<int32_t> ids = get_bool(j, "add_special", true) ? tok.encode_with_special(c->get<std::string>())
                                                              : tok.encode(c->get<std::string>());
  if (ids.size() > static_cast<size_t>(limits.max_prompt_tokens) * 16)
    throw bad_request("content", "content has too many tokens");
  return ids;
}

std::vector<int32_t> parse_detokenize_request(std::string_view body, const Limits& limits,
                                              const ModelLimits& model) {
  const json j = parse_object(body);
  const json* t = field(j, "tokens");
  if (!t || !t->is_array()) throw bad_request("tokens", "tokens must be a list of token ids");
  if (t->size() > static_cast<size_t>(limits.max_prompt_tokens) * 16)
    throw bad_request("tokens", "too many tokens");
  const int64_t vocab = model.vocab_size;
  std::vector<int32_t> ids;
  for (const auto& x : *t) {
    if (!x.is_number_integer()) throw bad_request("tokens", "token ids must be integers");
    const int64_t id = x.is_number_unsigned() && x.get<uint64_t>() > (1ULL << 62) ? -1 : x.get<int64_t>();
    if (id < 0 || id >= vocab)
      throw bad_request("tokens", "token id " + x.dump() + " is outside [0, " + std::to_string(vocab) + ")");
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

}  // namespace hippo::serve
