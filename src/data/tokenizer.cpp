#include "data/tokenizer.h"

#include <nlohmann/json.hpp>

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

void embed_tokenizer(const Tokenizer& tok, std::map<std::string, std::string>& meta) {
  for (const char* key : {kTokenizerKey, kTokenizerEncoderJsonKey, kTokenizerVocabBpeKey, kTokenizerIdKey})
    meta.erase(key);
  if (dynamic_cast<const ByteTokenizer*>(&tok)) {
    meta[kTokenizerKey] = "byte";
  } else if (const auto* bpe = dynamic_cast<const Gpt2Bpe*>(&tok)) {
    meta[kTokenizerKey] = "gpt2-bpe";
    meta[kTokenizerEncoderJsonKey] = bpe->encoder_json();
    meta[kTokenizerVocabBpeKey] = bpe->vocab_bpe();
  } else {
    fail("cannot embed tokenizer ", tok.id(), " in a model file (only byte and GPT-2 BPE)");
  }
  meta[kTokenizerIdKey] = tok.id();
}

namespace {

std::string key_of(const std::string& file, const char* key) {
  return str(file, ": __metadata__.", key);
}

const std::string* find(const std::map<std::string, std::string>& meta, const char* key) {
  auto it = meta.find(key);
  return it == meta.end() ? nullptr : &it->second;
}

// The embedded tokenizer (tokenizer = "byte" | "gpt2-bpe").
std::unique_ptr<Tokenizer> embedded(const std::map<std::string, std::string>& meta,
                                    const std::string& file, const std::string& kind) {
  std::unique_ptr<Tokenizer> tok;
  if (kind == "byte") {
    tok = std::make_unique<ByteTokenizer>();
  } else {
    const std::string* enc = find(meta, kTokenizerEncoderJsonKey);
    const std::string* bpe = find(meta, kTokenizerVocabBpeKey);
    for (auto [text, key] : {std::pair{enc, kTokenizerEncoderJsonKey}, std::pair{bpe, kTokenizerVocabBpeKey}})
      HIPPO_CHECK(text, key_of(file, kTokenizerKey), " is \"gpt2-bpe\" but ", key_of(file, key),
                  " (the embedded vocabulary) is missing");
    tok = std::make_unique<Gpt2Bpe>(*enc, *bpe, key_of(file, kTokenizerEncoderJsonKey),
                                    key_of(file, kTokenizerVocabBpeKey));
  }
  // The id hashes the vocabulary texts: a changed byte anywhere in them is caught here, not
  // only what breaks their syntax.
  if (const std::string* id = find(meta, kTokenizerIdKey))
    HIPPO_CHECK(*id == tok->id(), key_of(file, kTokenizerIdKey), " is \"", *id,
                "\" but the embedded tokenizer is ", tok->id(),
                ": the embedded vocabulary (__metadata__.", kTokenizerEncoderJsonKey, ", ",
                kTokenizerVocabBpeKey, ") was changed or damaged");
  return tok;
}

}  // namespace

std::unique_ptr<Tokenizer> tokenizer_from_metadata(const std::map<std::string, std::string>& meta,
                                                   const std::string& file) {
  if (const std::string* kind = find(meta, kTokenizerKey)) {
    if (*kind == "byte" || *kind == "gpt2-bpe") return embedded(meta, file, *kind);
    if (kind->rfind("gpt2:", 0) == 0) {  // written by hippo before the vocabulary was embedded
      try {
        return load_tokenizer(*kind);
      } catch (const Error& e) {
        fail(key_of(file, kTokenizerKey), " is \"", *kind, "\", a vocabulary folder relative to "
             "the working directory (a file from an older hippo), which cannot be loaded here: ",
             e.what(), ". Run from the folder it was trained in, or pass the tokenizer explicitly");
      }
    }
    fail(key_of(file, kTokenizerKey), " is \"", *kind,
         "\", not a known tokenizer (expected \"byte\" or \"gpt2-bpe\")");
  }
  // No tokenizer recorded (an older or foreign file): today's guess from the vocabulary size.
  int64_t vocab = -1;
  if (const std::string* cfg = find(meta, "config")) {
    const nlohmann::json j = nlohmann::json::parse(*cfg, nullptr, false);
    if (j.is_object() && j.contains("vocab_size") && j["vocab_size"].is_number_integer())
      vocab = j["vocab_size"].get<int64_t>();
  }
  HIPPO_CHECK(vocab >= 0, file, ": no tokenizer recorded (__metadata__.", kTokenizerKey,
              ") and no vocab_size in __metadata__.config to guess one from; pass the tokenizer explicitly");
  if (vocab < 50257) return std::make_unique<ByteTokenizer>();
  const std::string guess = "gpt2:data/gpt2";
  try {
    return load_tokenizer(guess);
  } catch (const Error& e) {
    fail(file, ": no tokenizer recorded (__metadata__.", kTokenizerKey, ", a file from an older "
         "hippo); its vocab_size ", vocab, " suggested ", guess, " (the legacy guess, relative to "
         "the working directory), which cannot be loaded here: ", e.what(),
         ". Pass the tokenizer explicitly");
  }
}

}  // namespace hippo
