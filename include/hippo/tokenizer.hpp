// Tokenizers turn text (bytes, normally UTF-8) into token ids and back. One interface, used by
// the engine and by programs: byte-level, or GPT-2 BPE with its vocabulary stored in the model
// file.
#pragma once
#include <cstdint>
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

}  // namespace hippo
