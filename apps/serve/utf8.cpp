#include "apps/serve/utf8.h"

#include <cstdint>

namespace hippo::serve {

namespace {

// Length of the sequence a lead byte starts (0: not a lead byte), and the allowed range of the
// second byte (the table of well-formed sequences, Unicode 15 table 3-7).
struct Lead {
  int len;
  uint8_t lo, hi;
};

Lead lead_of(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes from i form a well-formed prefix of the sequence starting at i (>= 1 for a lead
// byte), and whether the sequence is complete.
size_t valid_prefix(std::string_view s, size_t i, bool* complete) {
  const Lead l = lead_of(static_cast<uint8_t>(s[i]));
  *complete = l.len == 1;
  if (l.len <= 1) return l.len;
  size_t k = 1;
  for (; k < static_cast<size_t>(l.len) && i + k < s.size(); ++k) {
    const uint8_t c = static_cast<uint8_t>(s[i + k]);
    const uint8_t lo = k == 1 ? l.lo : 0x80, hi = k == 1 ? l.hi : 0xBF;
    if (c < lo || c > hi) return k;
  }
  *complete = k == static_cast<size_t>(l.len);
  return k;
}

}  // namespace

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    bool complete = false;
    const size_t k = valid_prefix(s, i, &complete);
    if (complete) {
      out.append(s.substr(i, k));
      i += k;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for the maximal subpart (or the lone bad byte)
      i += k == 0 ? 1 : k;
    }
  }
  return out;
}

size_t incomplete_utf8_tail(std::string_view s) {
  // Only the last 3 bytes can start an unfinished sequence.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const size_t i = s.size() - back;
    const Lead l = lead_of(static_cast<uint8_t>(s[i]));
    if (l.len == 0) continue;  // a continuation byte (or invalid): look further back
    if (l.len == 1) return 0;
    bool complete = false;
    const size_t k = valid_prefix(s, i, &complete);
    return !complete && k == back ? back : 0;
  }
  return 0;
}

}  // namespace hippo::serve
