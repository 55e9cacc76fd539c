// libFuzzer target for hippo serve's request parser and validator (apps/serve/request.cpp) and
// its text streaming (apps/serve/text_stream.cpp). The first byte picks the endpoint; the rest
// is the body. Any body must parse within the limits or be refused with a 400 ApiError; an
// accepted request must respect every limit (so no request allocates without bound). Mode 4
// checks that streamed text (stop strings, UTF-8 hold-back) concatenates to the whole text.
// Built and run by scripts/fuzz.sh serve_request from the apps/serve sources alone (no
// library build): the byte tokenizer the parser tokenizes with is restated here (ids 0-255 are
// the bytes, 256 is end-of-text), with Tokenizer::encode_with_special as src/data/tokenizer.cpp.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>
#include <string_view>

#include "apps/serve/api_error.h"
#include "apps/serve/request.h"
#include "apps/serve/text_stream.h"
#include "apps/serve/utf8.h"
#include "fuzz/fuzz_common.h"
#include "hippo/tokenizer.hpp"

using namespace hippo;
using namespace hippo::serve;

namespace {

class FuzzByteTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    return std::vector<int32_t>(reinterpret_cast<const uint8_t*>(text.data()),
                                reinterpret_cast<const uint8_t*>(text.data()) + text.size());
  }
  std::string decode(std::span<const int32_t> ids) const override {
    std::string s;
    for (int32_t id : ids) {
      if (id < 0 || id > 256) throw ApiError(500, "fuzz", "decode: id out of range");
      if (id == 256) s += kEndOfText;
      else s += static_cast<char>(id);
    }
    return s;
  }
  int32_t vocab_size() const override { return 257; }
  int32_t eot_id() const override { return 256; }
  std::string id() const override { return "byte-v1"; }
};

const Tokenizer& tok() {
  static const FuzzByteTokenizer t;
  return t;
}

void check(const CompletionRequest& r, const Limits& lim, const ModelLimits& ml) {
  if (r.max_tokens < 0 || r.max_tokens > lim.max_tokens) __builtin_trap();
  if (r.n < 1 || r.n > lim.max_n) __builtin_trap();
  if (r.prompts.empty() || r.prompts.size() * static_cast<size_t>(r.n) > static_cast<size_t>(lim.max_sequences))
    __builtin_trap();
  if (r.stop.size() > static_cast<size_t>(lim.max_stop) + (r.chat ? 1 : 0)) __builtin_trap();
  if (r.logprobs > lim.max_logprobs) __builtin_trap();
  for (const auto& p : r.prompts) {
    if (p.empty() || p.size() > static_cast<size_t>(lim.max_prompt_tokens)) __builtin_trap();
    for (int32_t t : p)
      if (t < 0 || t >= ml.vocab_size) __builtin_trap();
  }
  if (!(r.temperature >= 0 && r.temperature <= 2 && r.top_p > 0 && r.top_p <= 1 && r.top_k >= 0))
    __builtin_trap();
}

}  // namespace

std::vector<int32_t> hippo::Tokenizer::encode_with_special(std::string_view text) const {
  std::vector<int32_t> out;
  for (;;) {
    const size_t at = text.find(kEndOfText);
    const std::vector<int32_t> part = encode(text.substr(0, at));
    out.insert(out.end(), part.begin(), part.end());
    if (at == std::string_view::npos) break;
    out.push_back(eot_id());
    text.remove_prefix(at + kEndOfText.size());
  }
  return out;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string dir = fuzz::seed_dir();
  if (dir.empty()) return 0;
  const char* seeds[] = {
      "\x00{\"prompt\": \"Hello\", \"max_tokens\": 16, \"temperature\": 0.7, \"top_p\": 0.9, \"top_k\": 40, "
      "\"seed\": 1, \"stop\": [\"\\n\", \"x\"], \"n\": 2, \"stream\": true, \"echo\": true, \"logprobs\": 3}",
      "\x00{\"prompt\": [[1, 2, 3], \"text\"], \"max_tokens\": 0, \"echo\": true, \"logprobs\": 0}",
      "\x00{\"prompt\": [72, 105], \"session_id\": \"conv-1\", \"stream_options\": {\"include_usage\": true}}",
      "\x01{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
      "\"content\": [{\"type\": \"text\", \"text\": \"Hi\"}]}], \"logprobs\": true, \"top_logprobs\": 2}",
      "\x02{\"content\": \"h\\u00e9llo <|endoftext|>\"}",
      "\x03{\"tokens\": [104, 105, 256]}",
      "\x04\x02" "ab\xc3\xa9 xab\xf0\x9f\x98",
  };
  int i = 0;
  for (const char* s : seeds) {
    const std::string body(s + 1);
    fuzz::write_seed(dir, "req" + std::to_string(i++), std::string(1, s[0]) + body);
  }
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  Limits lim;
  lim.max_prompt_tokens = 512;
  ModelLimits ml;
  ml.vocab_size = tok().vocab_size();
  ml.max_position = (data[0] & 0x10) ? 600 : 0;
  try {
    switch (data[0] % 5) {
      case 0:
        check(parse_completion_request(body, tok(), lim, ml), lim, ml);
        break;
      case 1:
        check(parse_chat_request(body, tok(), lim, ml), lim, ml);
        break;
      case 2:
        if (parse_tokenize_request(body, tok(), lim).size() > static_cast<size_t>(lim.max_prompt_tokens) * 16)
          __builtin_trap();
        break;
      case 3:
        for (int32_t t : parse_detokenize_request(body, lim, ml))
          if (t < 0 || t >= ml.vocab_size) __builtin_trap();
        break;
      case 4: {  // [stop length] stop bytes, then pieces of 1-3 bytes
        if (body.empty()) return 0;
        const size_t n = std::min<size_t>(static_cast<uint8_t>(body[0]) % 8, body.size() - 1);
        const std::string stop(body.substr(1, n));
        TextStream s(stop.empty() ? std::vector<std::string>{} : std::vector<std::string>{stop});
        std::string streamed;
        for (size_t i = 1 + n; i < body.size() && !s.stopped();) {
          const size_t k = std::min<size_t>(1 + (static_cast<uint8_t>(body[i]) % 3), body.size() - i);
          s.add(body.substr(i, k));
          streamed += s.take_ready();
          i += k;
        }
        streamed += s.take_rest();
        if (streamed != valid_utf8(s.raw())) __builtin_trap();
        if (!stop.empty() && s.raw().find(stop) != std::string::npos) __builtin_trap();
        break;
      }
    }
  } catch (const ApiError& e) {
    if (e.status != 400) __builtin_trap();
  }
  return 0;
}
