// Tokenizers turn text (bytes, normally UTF-8) into token ids and back. The interface is public
// (include/hippo/tokenizer.hpp); the implementations live beside this file. Here: how a model
// file stores its tokenizer.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "hippo/tokenizer.hpp"

namespace hippo {

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
