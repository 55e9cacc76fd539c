#include "apps/serve/text_stream.h"

#include <algorithm>

#include "apps/serve/utf8.h"

namespace hippo::serve {

bool TextStream::add(std::string_view piece) {
  if (stopped_) return true;
  const size_t old = raw_.size();
  raw_.append(piece);
  size_t cut = std::string::npos;
  for (const auto& s : stops_) {
    if (s.empty()) continue;
    // A new occurrence ends inside the new bytes, so it starts at most |s|-1 bytes before them.
    const size_t from = old >= s.size() - 1 ? old - (s.size() - 1) : 0;
    const size_t at = raw_.find(s, from);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  if (cut != std::string::npos) {
    raw_.resize(std::max(cut, sent_));  // sent_ <= cut: a possible stop start is never sent
    stopped_ = true;
  }
  return stopped_;
}

// The longest suffix of the text that is a proper prefix of some stop string.
size_t TextStream::held_for_stops() const {
  size_t held = 0;
  for (const auto& s : stops_)
    for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), raw_.size()); k > held; --k)
      if (raw_.compare(raw_.size() - k, k, s, 0, k) == 0) {
        held = k;
        break;
      }
  return held;
}

std::string TextStream::take_ready() {
  size_t end = raw_.size();
  if (!stopped_) end -= std::min(end - sent_, held_for_stops());
  end -= incomplete_utf8_tail(std::string_view(raw_).substr(sent_, end - sent_));
  std::string out = valid_utf8(std::string_view(raw_).substr(sent_, end - sent_));
  sent_ = end;
  return out;
}

std::string TextStream::take_rest() {
  std::string out = valid_utf8(std::string_view(raw_).substr(sent_));
  sent_ = raw_.size();
  return out;
}

}  // namespace hippo::serve
