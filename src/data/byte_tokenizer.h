// One token per byte (ids 0..255) plus <|endoftext|> = 256: no vocabulary files, any input.
#pragma once
#include "data/tokenizer.h"

namespace hippo {

class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int32_t kEot = 256;

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  int32_t vocab_size() const override { return 257; }
  int32_t eot_id() const override { return kEot; }
  std::string id() const override { return "byte-v1"; }
};

}  // namespace hippo
