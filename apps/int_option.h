// Strict parsing of integer command-line options. CLI11 saturates an int64 that overflows
// ("99999999999999999999" reads as 2^63-1) and wraps a negative uint64 ("-1" reads as 2^64-1),
// so hippo's 64-bit count and seed options are taken as text and parsed here: the whole text
// must be a decimal integer inside the option's range, else hippo::Error names the option.
#pragma once
#include <charconv>
#include <cstdint>
#include <string>

#include "hippo/error.hpp"

namespace hippo::cli {

// Largest step count or frequency any option accepts.
inline constexpr int64_t kMaxCount = 1'000'000'000'000;

inline int64_t parse_int_option(const std::string& text, const char* name, int64_t lo, int64_t hi) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  const std::string n = name;
  if (text.empty() || ec != std::errc() || ptr != end)
    throw Error(n + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "], got \"" + text + "\"");
  if (v < lo) throw Error(n + " must be >= " + std::to_string(lo) + ", got " + std::to_string(v));
  if (v > hi) throw Error(n + " must be <= " + std::to_string(hi) + ", got " + std::to_string(v));
  return v;
}

inline uint64_t parse_u64_option(const std::string& text, const char* name) {
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || text[0] == '-' || ec != std::errc() || ptr != end)
    throw Error(std::string(name) + " must be an integer in [0, 18446744073709551615], got \"" +
                text + "\"");
  return v;
}

}  // namespace hippo::cli
