// Recent sequence states, so that a request whose prompt begins with tokens the server has
// already run (a chat's earlier turns, a shared system prompt) prefills only the new suffix.
// Entries are forks of finished or just-prefilled sessions, least recently used dropped first;
// the cache is bounded by entries and by state bytes. Used by the scheduler thread only.
#pragma once
#include <cstdint>
#include <list>
#include <optional>
#include <vector>

#include "hippo/hippo.hpp"

namespace hippo::serve {

class PrefixCache {
 public:
  PrefixCache(int max_entries, int64_t max_bytes) : max_entries_(max_entries), max_bytes_(max_bytes) {}

  // Keeps a copy of `session`, which has consumed exactly `tokens`.
  void put(const std::vector<int32_t>& tokens, const Session& session);

  // A fork of the entry with the longest token sequence that is a prefix of `prompt` (at least
  // `min_tokens` long), and its length; nothing if none.
  std::optional<std::pair<Session, size_t>> longest_prefix(const std::vector<int32_t>& prompt,
                                                            size_t min_tokens = 1);

  int64_t bytes() const { return bytes_; }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::vector<int32_t> tokens;
    Session session;
    int64_t bytes;
  };
  int max_entries_;
  int64_t max_bytes_;
  int64_t bytes_ = 0;
  std::list<Entry> entries_;  // most recently used first
};

}  // namespace hippo::serve
