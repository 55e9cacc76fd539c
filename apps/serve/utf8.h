// Generated text is bytes; JSON strings must be UTF-8. Bytes that are not valid UTF-8 become
// U+FFFD, one per maximal invalid subpart (the Unicode recommendation, which Python's
// bytes.decode("utf-8", "replace") and browsers' TextDecoder follow), so a client can check
// the text against `hippo generate` output decoded the same way.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace hippo::serve {

// The bytes with every invalid subpart replaced by U+FFFD.
std::string valid_utf8(std::string_view bytes);

// Length of a trailing sequence that is a valid UTF-8 prefix but not yet complete (0..3):
// streaming holds these bytes back until the next token completes (or spoils) them.
size_t incomplete_utf8_tail(std::string_view bytes);

}  // namespace hippo::serve
