#include "data/tokenizer.h"

#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "data/gpt2_bpe.h"

namespace hippo {

std::vector<int32_t> Tokenizer::encode_with_special(std::string_view text) const {
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

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec) {
  if (spec == "byte") return std::make_unique<ByteTokenizer>();
  if (spec.rfind("gpt2:", 0) == 0) {
    const std::string dir = spec.substr(5);
    HIPPO_CHECK(!dir.empty(), "tokenizer spec '", spec, "': missing folder after 'gpt2:'");
    return std::make_unique<Gpt2Bpe>(dir);
  }
  fail("unknown tokenizer spec '", spec, "' (expected 'byte' or 'gpt2:<dir>')");
}

}  // namespace hippo
