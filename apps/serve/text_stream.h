// Turns a choice's generated token pieces into the text a client receives: cut before the first
// stop string, and, while streaming, released only where it is final (no trailing bytes that
// could still begin a stop string or finish a UTF-8 character). The streamed pieces concatenate
// to exactly the text of a non-streamed reply.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace hippo::serve {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Adds a token's bytes. Returns true once a stop string has appeared: the text is then cut
  // just before it and nothing more may be added.
  bool add(std::string_view piece);
  bool stopped() const { return stopped_; }

  // Text that can be sent now (valid UTF-8; see utf8.h), and all that is left at the end.
  std::string take_ready();
  std::string take_rest();

  // The whole text so far (raw bytes, cut at a stop string).
  const std::string& raw() const { return raw_; }

 private:
  size_t held_for_stops() const;
  std::vector<std::string> stops_;
  std::string raw_;
  size_t sent_ = 0;
  bool stopped_ = false;
};

}  // namespace hippo::serve
