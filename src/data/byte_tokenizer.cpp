#include "data/byte_tokenizer.h"

#include "core/error.h"

namespace hippo {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    HIPPO_CHECK(id >= 0 && id <= kEot, "byte tokenizer: token id ", id, " at position ", i,
                " is outside [0, 256]");
    if (id == kEot)
      out += kEndOfText;
    else
      out.push_back(static_cast<char>(id));
  }
  return out;
}

}  // namespace hippo
