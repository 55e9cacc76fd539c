#include "data/gpt2_bpe.h"

#include <climits>
#include <utility>
#include <cstdio>
#include <functional>
#include <queue>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/hash.h"
#include "data/read_file.h"
#include "data/unicode_tables.h"
#include "data/utf8.h"

namespace hippo {

namespace {

// GPT-2's bytes_to_unicode(): printable bytes stand for themselves, the other 68 bytes are
// shifted to U+0100.. so that every token is a printable string in encoder.json.
std::array<char32_t, 256> byte_to_unicode() {
  std::array<char32_t, 256> map{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    map[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return map;
}

// Inverse of byte_to_unicode: code point -> byte, or -1.
std::array<int, 324> unicode_to_byte() {
  std::array<int, 324> inv;
  inv.fill(-1);
  const std::array<char32_t, 256> fwd = byte_to_unicode();
  for (int b = 0; b < 256; ++b) inv[fwd[b]] = b;
  return inv;
}

// An encoder.json / vocab.bpe token (printable form, UTF-8) to the bytes it stands for.
bool token_to_bytes(std::string_view token, std::string& out) {
  static const std::array<int, 324> inv = unicode_to_byte();
  out.clear();
  if (!utf8::is_valid(token)) return false;
  for (char32_t cp : utf8::decode(token)) {
    if (cp >= inv.size() || inv[cp] < 0) return false;
    out.push_back(static_cast<char>(inv[cp]));
  }
  return !out.empty();
}

}  // namespace

Gpt2Bpe::Gpt2Bpe(const std::string& dir) {
  const std::string enc_path = dir + "/encoder.json";
  const std::string bpe_path = dir + "/vocab.bpe";
  const char* hint = " (run scripts/get_gpt2_vocab.sh to fetch the GPT-2 vocabulary)";
  try {
    encoder_json_ = read_whole_file(enc_path);
    vocab_bpe_ = read_whole_file(bpe_path);
  } catch (const Error& e) {
    fail("gpt2 tokenizer: ", e.what(), hint);
  }
  build(enc_path, bpe_path);
}

Gpt2Bpe::Gpt2Bpe(std::string encoder_json, std::string vocab_bpe, const std::string& encoder_source,
                 const std::string& vocab_source)
    : encoder_json_(std::move(encoder_json)), vocab_bpe_(std::move(vocab_bpe)) {
  build(encoder_source, vocab_source);
}

void Gpt2Bpe::build(const std::string& encoder_source, const std::string& vocab_source) {
  load_encoder(encoder_source, encoder_json_);
  load_merges(vocab_source, vocab_bpe_);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(fnv1a64(vocab_bpe_, fnv1a64(encoder_json_))));
  id_ = std::string("gpt2-bpe:") + hex;
}

void Gpt2Bpe::load_encoder(const std::string& path, const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  HIPPO_CHECK(j.is_object() && !j.empty(), path, ": expected a JSON object {token: id}");
  const size_t n = j.size();
  HIPPO_CHECK(n <= INT32_MAX, path, ": too many tokens");
  token_bytes_.assign(n, std::string());
  std::vector<bool> seen(n, false);
  std::string bytes;
  for (auto it = j.begin(); it != j.end(); ++it) {
    HIPPO_CHECK(it.value().is_number_integer(), path, ": token '", it.key(),
                "' has a non-integer id");
    const int64_t id = it.value().get<int64_t>();
    HIPPO_CHECK(id >= 0 && id < static_cast<int64_t>(n), path, ": token '", it.key(), "' has id ",
                id, ", outside [0, ", n, ")");
    HIPPO_CHECK(!seen[id], path, ": id ", id, " is used twice");
    seen[id] = true;
    HIPPO_CHECK(token_to_bytes(it.key(), bytes), path, ": token '", it.key(),
                "' is not in GPT-2's byte-to-unicode alphabet");
    token_bytes_[id] = bytes;
    if (it.key() == kEndOfText) eot_ = static_cast<int32_t>(id);
    HIPPO_CHECK(id_of_bytes_.emplace(bytes, static_cast<int32_t>(id)).second, path,
                ": token '", it.key(), "' is listed twice");
  }
  HIPPO_CHECK(eot_ >= 0, path, ": no \"<|endoftext|>\" token");
  for (int b = 0; b < 256; ++b) {
    auto it = id_of_bytes_.find(std::string(1, static_cast<char>(b)));
    HIPPO_CHECK(it != id_of_bytes_.end(), path, ": no token for byte ", b);
    byte_id_[b] = it->second;
  }
}

void Gpt2Bpe::load_merges(const std::string& path, const std::string& text) {
  // As the reference: lines[1:-1], i.e. skip the "#version" line and the text after the last
  // newline.
  std::vector<std::string_view> lines;
  std::string_view rest = text;
  for (size_t nl; (nl = rest.find('\n')) != std::string_view::npos;) {
    lines.push_back(rest.substr(0, nl));
    rest.remove_prefix(nl + 1);
  }
  HIPPO_CHECK(!lines.empty(), path, ": empty (expected a \"#version\" line, then merges)");
  std::string a_bytes, b_bytes;
  for (size_t ln = 1; ln < lines.size(); ++ln) {
    std::string_view line = lines[ln];
    std::vector<std::string_view> parts;
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
      if (j > i) parts.emplace_back(line.substr(i, j - i));
      i = j;
    }
    HIPPO_CHECK(parts.size() == 2, path, " line ", ln + 1, ": expected two tokens, got ",
                parts.size());
    HIPPO_CHECK(token_to_bytes(parts[0], a_bytes) && token_to_bytes(parts[1], b_bytes), path,
                " line ", ln + 1, ": token not in GPT-2's byte-to-unicode alphabet");
    auto a = id_of_bytes_.find(a_bytes), b = id_of_bytes_.find(b_bytes),
         ab = id_of_bytes_.find(a_bytes + b_bytes);
    HIPPO_CHECK(a != id_of_bytes_.end() && b != id_of_bytes_.end() && ab != id_of_bytes_.end(),
                path, " line ", ln + 1, ": merge '", line,
                "' uses a token that encoder.json does not have");
    // Later lines win, as in the reference's dict(zip(merges, range(...))).
    merges_[pair_key(a->second, b->second)] = Merge{static_cast<int32_t>(ln - 1), ab->second};
  }
}

const std::string& Gpt2Bpe::token_bytes(int32_t id) const {
  HIPPO_CHECK(id >= 0 && id < vocab_size(), "gpt2 tokenizer: token id ", id, " is outside [0, ",
              vocab_size(), ")");
  return token_bytes_[id];
}

std::vector<std::string_view> Gpt2Bpe::split_pieces(std::string_view text) {
  // Code points with their byte offsets; the regex is matched over code points as JavaScript's
  // /u flag does.
  std::vector<char32_t> cps = utf8::decode(text);
  const size_t n = cps.size();
  std::vector<size_t> off(n + 1);
  {
    size_t pos = 0;
    for (size_t i = 0; i < n; ++i) {
      off[i] = pos;
      pos += cps[i] < 0x80 ? 1 : cps[i] < 0x800 ? 2 : cps[i] < 0x10000 ? 3 : 4;
    }
    off[n] = pos;
    HIPPO_CHECK(pos == text.size(), "gpt2 tokenizer: split_pieces needs valid UTF-8");
  }
  std::vector<unicode::CharClass> cls(n);
  for (size_t i = 0; i < n; ++i) cls[i] = unicode::classify(cps[i]);
  auto run_end = [&](size_t j, unicode::CharClass c) {
    while (j < n && cls[j] == c) ++j;
    return j;
  };

  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < n;) {
    size_t end = i;
    const char32_t c = cps[i];
    const auto next = [&](size_t k) -> char32_t { return i + k < n ? cps[i + k] : 0; };
    if (c == '\'' && (next(1) == 's' || next(1) == 't' || next(1) == 'm' || next(1) == 'd')) {
      end = i + 2;  // 's 't 'm 'd
    } else if (c == '\'' && ((next(1) == 'r' && next(2) == 'e') ||
                             (next(1) == 'v' && next(2) == 'e') ||
                             (next(1) == 'l' && next(2) == 'l'))) {
      end = i + 3;  // 're 've 'll
    } else {
      // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional U+0020, then a run of one
      // class. Without the space the run would have to start with the space itself, which is
      // \s, so trying j = i + 1 for a leading space is enough.
      const size_t j = (c == ' ') ? i + 1 : i;
      if (j < n && cls[j] != unicode::kSpace) {
        end = run_end(j, cls[j]);
      } else {
        // "\s+(?!\S)|\s+": a whitespace run, less its last character when that is followed by
        // non-space and the run is longer than one.
        const size_t k = run_end(i, unicode::kSpace);
        end = (k == n || k - i == 1) ? k : k - 1;
      }
    }
    pieces.push_back(text.substr(off[i], off[end] - off[i]));
    i = end;
  }
  return pieces;
}

// The reference's rounds, without rescanning the word: symbols in a doubly linked list over
// byte positions, and a min-heap of candidate pairs keyed by (rank, position) holding every
// adjacent pair that has a merge, pushed when the pair forms and checked when popped (lazy
// invalidation). Why this gives the reference's result:
//  - A merged token's bytes are longer than either part's, so the id at a position only grows
//    and never comes back: a popped entry whose two ids are still (left, right) at its position
//    and the next live one is the very pair that was pushed, still adjacent.
//  - Distinct pairs have distinct ranks, so one rank is one pair. A round takes every entry of
//    the lowest rank out of the heap first and merges them in position order: the reference's
//    left-to-right pass over all occurrences. Pairs formed during the round contain the new
//    token, so they are other pairs with other ranks (even lower ones, with a hand-made
//    vocab.bpe) and wait for later rounds, as in the reference.
// Each merge pushes at most two entries: O(n log n) for a piece of n bytes.
std::vector<int32_t> Gpt2Bpe::bpe(std::string_view piece) const {
  const int32_t n = static_cast<int32_t>(piece.size());
  HIPPO_CHECK(piece.size() <= static_cast<size_t>(INT32_MAX), "gpt2 tokenizer: a piece of ",
              piece.size(), " bytes is too long");
  std::vector<int32_t> id(n), next(n), prev(n);
  for (int32_t i = 0; i < n; ++i) {
    id[i] = byte_id_[static_cast<unsigned char>(piece[i])];
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  struct Candidate {
    int32_t rank, pos, left, right, merged;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0 || next[pos] < 0) return;
    const int32_t nx = next[pos];
    auto it = merges_.find(pair_key(id[pos], id[nx]));
    if (it != merges_.end())
      heap.push(Candidate{it->second.rank, pos, id[pos], id[nx], it->second.merged});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  std::vector<Candidate> round;
  while (!heap.empty()) {
    const int32_t rank = heap.top().rank;
    round.clear();
    for (; !heap.empty() && heap.top().rank == rank; heap.pop()) round.push_back(heap.top());
    for (const Candidate& c : round) {
      const int32_t i = c.pos, j = next[i];
      if (id[i] != c.left || j < 0 || id[j] != c.right) continue;  // no longer this pair
      id[i] = c.merged;
      id[j] = -1;  // absorbed into i
      next[i] = next[j];
      if (next[j] >= 0) prev[next[j]] = i;
      push(prev[i]);
      push(i);
    }
  }
  std::vector<int32_t> out;
  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = next[i]) out.push_back(id[i]);  // 0 stays alive
  return out;
}

std::vector<int32_t> Gpt2Bpe::bpe_reference(std::string_view piece) const {
  std::vector<int32_t> word(piece.size());
  for (size_t i = 0; i < piece.size(); ++i) word[i] = byte_id_[static_cast<unsigned char>(piece[i])];
  std::vector<int32_t> merged;
  merged.reserve(word.size());
  // The reference loop: find the adjacent pair with the lowest rank, merge all its
  // occurrences left to right, repeat until no pair has a rank. O(n^2) on a piece of n bytes.
  while (word.size() > 1) {
    int32_t best_rank = INT32_MAX;
    uint64_t best_key = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      const uint64_t key = pair_key(word[i], word[i + 1]);
      auto it = merges_.find(key);
      if (it != merges_.end() && it->second.rank < best_rank) {
        best_rank = it->second.rank;
        best_key = key;
      }
    }
    if (best_rank == INT32_MAX) break;
    const Merge& m = merges_.at(best_key);
    const int32_t first = static_cast<int32_t>(best_key >> 32);
    const int32_t second = static_cast<int32_t>(best_key & 0xffffffffu);
    merged.clear();
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(m.merged);
        i += 2;
      } else {
        merged.push_back(word[i]);
        i += 1;
      }
    }
    word.swap(merged);
  }
  return word;
}

std::vector<int32_t> Gpt2Bpe::encode(std::string_view text) const {
  std::string clean;
  if (!utf8::is_valid(text)) {
    clean = utf8::sanitize(text);
    text = clean;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  constexpr size_t kMaxCacheEntries = 1 << 18;
  // Words repeat; long runs (a line of base64, a megabyte without spaces) hardly do, and
  // caching them would let the cache hold gigabytes.
  constexpr size_t kMaxCachedPiece = 64;
  for (std::string_view piece : split_pieces(text)) {
    if (piece.size() > kMaxCachedPiece) {
      const std::vector<int32_t> part = bpe(piece);
      ids.insert(ids.end(), part.begin(), part.end());
      continue;
    }
    const std::string key(piece);
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      auto it = cache_.find(key);
      if (it != cache_.end()) {
        ids.insert(ids.end(), it->second.begin(), it->second.end());
        continue;
      }
    }
    std::vector<int32_t> part = bpe(piece);
    ids.insert(ids.end(), part.begin(), part.end());
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(key, std::move(part));
  }
  return ids;
}

std::vector<int32_t> Gpt2Bpe::encode_reference(std::string_view text) const {
  const std::string clean = utf8::sanitize(text);
  std::vector<int32_t> ids;
  for (std::string_view piece : split_pieces(clean)) {
    const std::vector<int32_t> part = bpe_reference(piece);
    ids.insert(ids.end(), part.begin(), part.end());
  }
  return ids;
}

std::string Gpt2Bpe::decode(std::span<const int32_t> ids) const {
  std::string out;
  out.reserve(ids.size() * 4);
  for (size_t i = 0; i < ids.size(); ++i) {
    HIPPO_CHECK(ids[i] >= 0 && ids[i] < vocab_size(), "gpt2 tokenizer: token id ", ids[i],
                " at position ", i, " is outside [0, ", vocab_size(), ")");
    out += token_bytes_[ids[i]];
  }
  return out;
}

}  // namespace hippo
