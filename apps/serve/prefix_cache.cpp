#include "apps/serve/prefix_cache.h"

#include <algorithm>

namespace hippo::serve {

void PrefixCache::put(const std::vector<int32_t>& tokens, const Session& session) {
  if (max_entries_ <= 0 || tokens.empty()) return;
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (it->tokens == tokens) {  // already held: just mark it used
      entries_.splice(entries_.begin(), entries_, it);
      return;
    }
  const int64_t b = session.state_bytes() + static_cast<int64_t>(session.logits().size() * 4) +
                    static_cast<int64_t>(tokens.size() * 4);
  if (b > max_bytes_) return;
  entries_.push_front(Entry{tokens, session.fork(), b});
  bytes_ += b;
  while (static_cast<int>(entries_.size()) > max_entries_ || bytes_ > max_bytes_) {
    bytes_ -= entries_.back().bytes;
    entries_.pop_back();
  }
}

std::optional<std::pair<Session, size_t>> PrefixCache::longest_prefix(
    const std::vector<int32_t>& prompt, size_t min_tokens) {
  auto best = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const auto& t = it->tokens;
    if (t.size() < min_tokens || t.size() > prompt.size()) continue;
    if (best != entries_.end() && t.size() <= best->tokens.size()) continue;
    if (std::equal(t.begin(), t.end(), prompt.begin())) best = it;
  }
  if (best == entries_.end()) return std::nullopt;
  entries_.splice(entries_.begin(), entries_, best);
  return std::make_pair(best->session.fork(), best->tokens.size());
}

}  // namespace hippo::serve
