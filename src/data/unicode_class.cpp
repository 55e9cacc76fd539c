#include <algorithm>
#include <array>

#include "data/unicode_tables.h"

namespace hippo::unicode {

CharClass classify_linear(char32_t cp) {
  for (size_t i = 0; i < kRangeCount; ++i)
    if (cp >= kRanges[i].first && cp <= kRanges[i].last) return kRanges[i].cls;
  return kOther;
}

namespace {
std::array<CharClass, 128> make_ascii_table() {
  std::array<CharClass, 128> t{};
  for (char32_t c = 0; c < 128; ++c) t[c] = classify_linear(c);
  return t;
}
}  // namespace

CharClass classify(char32_t cp) {
  static const std::array<CharClass, 128> ascii = make_ascii_table();
  if (cp < 128) return ascii[cp];
  const CodePointRange* end = kRanges + kRangeCount;
  // First range whose last >= cp.
  const CodePointRange* r = std::lower_bound(
      kRanges, end, cp, [](const CodePointRange& a, char32_t c) { return a.last < c; });
  return (r != end && cp >= r->first) ? r->cls : kOther;
}

}  // namespace hippo::unicode
