// Tokenizers turn text (bytes, normally UTF-8) into token ids and back.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hippo {

// The document separator's text form, shared by all tokenizers.
inline constexpr std::string_view kEndOfText = "<|endoftext|>";

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Plain text to ids. The text "<|endoftext|>" is ordinary text here (as in the GPT-2
  // reference encoder); use encode_with_special to turn it into eot_id().
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;

  // Ids to bytes; throws hippo::Error for an id outside [0, vocab_size()). eot_id() decodes to
  // "<|endoftext|>".
  virtual std::string decode(std::span<const int32_t> ids) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual int32_t eot_id() const = 0;

  // Identifies the tokenizer and its vocabulary (e.g. "byte-v1", "gpt2-bpe:<hash of the vocab
  // files>"): token caches store it and are rebuilt when it changes.
  virtual std::string id() const = 0;

  // Like encode, but every literal "<|endoftext|>" becomes eot_id().
  std::vector<int32_t> encode_with_special(std::string_view text) const;
};

// spec: "byte", or "gpt2:<dir>" where dir holds encoder.json and vocab.bpe (see
// scripts/get_gpt2_vocab.sh). Throws hippo::Error for an unknown spec or bad vocab files.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec);

// A model file carries its tokenizer in its safetensors __metadata__, so that it works from
// any working directory:
//   "tokenizer"              "byte" | "gpt2-bpe"
//   "tokenizer.encoder_json" (gpt2-bpe) the text of encoder.json
//   "tokenizer.vocab_bpe"    (gpt2-bpe) the text of vocab.bpe
//   "tokenizer.id"           Tokenizer::id() of the above, checked when it is loaded
inline constexpr const char* kTokenizerKey = "tokenizer";
inline constexpr const char* kTokenizerEncoderJsonKey = "tokenizer.encoder_json";
inline constexpr const char* kTokenizerVocabBpeKey = "tokenizer.vocab_bpe";
inline constexpr const char* kTokenizerIdKey = "tokenizer.id";

// Writes the keys above for `tok` into `meta` (replacing any earlier tokenizer keys). Throws
// for a tokenizer that cannot be embedded (neither byte nor GPT-2 BPE).
void embed_tokenizer(const Tokenizer& tok, std::map<std::string, std::string>& meta);

// The tokenizer of the model file `file` (its metadata `meta`). Errors name the file and the
// key at fault (a corrupted embedded vocabulary, one whose id does not match). Files written
// by older hippo versions still load:
//   "tokenizer" = "gpt2:DIR": from DIR (relative to the working directory), with an error
//     naming the file when DIR lacks the vocabulary;
//   no "tokenizer": guessed from the config's vocab_size, as hippo generate used to (GPT-2
//     size -> gpt2:data/gpt2, else byte), and the error says it was a guess.
std::unique_ptr<Tokenizer> tokenizer_from_metadata(const std::map<std::string, std::string>& meta,
                                                   const std::string& file);

}  // namespace hippo
