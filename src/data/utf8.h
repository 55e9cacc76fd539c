// UTF-8 decoding as the WHATWG Encoding Standard defines it (what node's Buffer.toString('utf8')
// and TextDecoder do): every maximal invalid subsequence becomes one U+FFFD. The GPT-2
// tokenizer uses it so that invalid input is tokenised exactly as the JavaScript reference
// tokenises the same bytes once node has decoded them to a string.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace hippo::utf8 {

// Decodes bytes to code points, replacing invalid sequences with U+FFFD.
std::vector<char32_t> decode(std::string_view bytes);

// Appends the UTF-8 encoding of cp (cp must be a Unicode scalar value).
void append(std::string& out, char32_t cp);

// decode() then re-encode: valid input comes back unchanged.
std::string sanitize(std::string_view bytes);

bool is_valid(std::string_view bytes);

}  // namespace hippo::utf8
