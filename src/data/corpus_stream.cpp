#include "data/corpus_stream.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "data/jsonl.h"
#include "data/read_file.h"
#include "data/tokenizer.h"
#include "io/mapped_file.h"

namespace hippo {

namespace fs = std::filesystem;

namespace {

// Drops the pages of f before `upto` from this process (they stay in the page cache), so a
// pass over a file larger than memory does not keep it resident.
void release_pages(const MappedFile& f, size_t upto) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t n = upto / page * page;
  if (f.data() && n > 0) ::madvise(f.data(), n, MADV_DONTNEED);
}

// Calls seg(text) for each <|endoftext|>-separated segment of a single file's text, in order:
// the file itself, or for a .jsonl file the text of its records joined by <|endoftext|> (as
// load_corpus reads it). Neither the separator nor the joiner can form an <|endoftext|> with
// the text around it (it has no border: no proper prefix that is also a suffix), so splitting
// each record's text apart gives the segments of the joined text.
template <typename F>
void for_each_segment(const MappedFile& f, bool jsonl, F seg) {
  std::string_view all(reinterpret_cast<const char*>(f.data()), f.size());
  auto split = [&](std::string_view text) {
    for (;;) {
      const size_t at = text.find(kEndOfText);
      seg(text.substr(0, at));
      if (at == std::string_view::npos) return;
      text.remove_prefix(at + kEndOfText.size());
    }
  };
  if (!jsonl) {  // segment by segment, dropping pages behind
    std::string_view text = all;
    for (;;) {
      const size_t at = text.find(kEndOfText);
      seg(text.substr(0, at));
      if (at == std::string_view::npos) break;
      text.remove_prefix(at + kEndOfText.size());
      release_pages(f, static_cast<size_t>(text.data() - all.data()));
    }
  } else {
    if (all.empty()) seg(std::string_view());  // no records: one empty text
    size_t line = 0;
    std::string_view rest = all;
    while (!rest.empty()) {
      ++line;
      const size_t eol = rest.find('\n');
      const std::string_view text = rest.substr(0, eol);
      rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 1);
      split(parse_jsonl_line(text, str(f.path(), ":", line)));
      if (line % 4096 == 0) release_pages(f, static_cast<size_t>(rest.data() - all.data()));
    }
  }
  release_pages(f, f.size());
}

// load_corpus's cuts (corpus.cpp, position_cuts) found in one pass: the first g in
// [at, limit] that starts a segment or follows a line break, else `at` moved past UTF-8
// continuation bytes (but not beyond limit).
template <typename Each>
size_t snap_streaming(Each each, size_t at, size_t limit) {
  std::optional<size_t> found;
  unsigned char head[4] = {0, 0, 0, 0};  // bytes at, at + 1, ... for the fallback
  size_t g = 0;
  each([&](std::string_view s) {
    const size_t s0 = g, e = g + s.size();
    g = e;
    if (found) return;
    for (size_t k = std::max(at, s0); k < std::min(e, at + 4); ++k)
      head[k - at] = static_cast<unsigned char>(s[k - s0]);
    if (s0 >= at && s0 <= limit) {
      found = s0;
      return;
    }
    for (size_t k = std::max(at, s0 + 1); k <= std::min(limit, e); ++k)
      if (s[k - 1 - s0] == '\n') {
        found = k;
        return;
      }
  });
  if (found) return *found;
  size_t k = at;
  while (k < limit && k < at + 4 && (head[k - at] & 0xC0) == 0x80) ++k;
  return k;
}

// A single file, as split_single_file (corpus.cpp) cuts it: by position 90/5/5 over the
// segments, each part in ~64 KiB pieces at line breaks.
void stream_single_file(const std::string& path, const CorpusPieceFn& piece) {
  const MappedFile f(path);
  const bool jsonl = is_jsonl_path(path);
  auto each = [&](auto&& fn) { for_each_segment(f, jsonl, fn); };
  size_t total = 0;
  each([&](std::string_view s) { total += s.size(); });
  constexpr size_t kPiece = 64 * 1024;
  auto add = [&](std::string_view part, Split split, bool ends) {
    while (!part.empty()) {
      size_t cut = part.size();
      if (cut > kPiece) {
        const size_t nl = part.find('\n', kPiece);
        cut = nl == std::string_view::npos ? part.size() : nl + 1;
      }
      piece(split, part.substr(0, cut), ends && cut == part.size());
      part.remove_prefix(cut);
    }
  };
  if (total < 3) {  // all of it (if anything) to train; the empty splits are refused later
    each([&](std::string_view s) { add(s, Split::Train, true); });
    return;
  }
  const size_t v = std::clamp<size_t>(total / 100 * 90 + total % 100 * 90 / 100, 1, total - 2);
  const size_t t = std::clamp<size_t>(total / 100 * 95 + total % 100 * 95 / 100, v + 1, total - 1);
  const size_t cut_v = snap_streaming(each, v, v + (t - v) / 2);
  const size_t cut_t = snap_streaming(each, t, t + (total - 1 - t) / 2);
  size_t g = 0;
  each([&](std::string_view s) {
    const size_t begin = g, end = g + s.size();
    g = end;
    const size_t bounds[4] = {begin, std::clamp(cut_v, begin, end), std::clamp(cut_t, begin, end), end};
    int last = -1;
    for (int k = 0; k < 3; ++k)
      if (bounds[k + 1] > bounds[k]) last = k;
    for (int k = 0; k <= last; ++k)
      if (bounds[k + 1] > bounds[k])
        add(s.substr(bounds[k] - begin, bounds[k + 1] - bounds[k]), static_cast<Split>(k), k == last);
  });
}

// A folder split by name hash, file by file: .txt files are documents named by their relative
// path, .jsonl records "path:line". Documents of different files never interleave in name
// order (a name without ':' compares with "other:..." at the same place as with "other:"), so
// sorting the files by that key and each file's records by name gives load_corpus's order.
bool stream_folder(const std::string& path, const CorpusPieceFn& piece) {
  if (is_brown_folder(path)) return false;
  struct File {
    std::string full, key;
    bool jsonl;
  };
  std::vector<File> files;
  for (const std::string& f : corpus_files(path)) {
    const std::string rel = fs::relative(f, path).string();
    if (rel.find(':') != std::string::npos) return false;
    files.push_back({f, is_jsonl_path(f) ? rel + ":" : rel, is_jsonl_path(f)});
  }
  auto records = [](const File& f) {  // sorted by name
    std::vector<JsonlRecord> r = parse_jsonl_texts(read_whole_file(f.full), f.full);
    std::sort(r.begin(), r.end(), [](const JsonlRecord& a, const JsonlRecord& b) {
      return std::to_string(a.line) < std::to_string(b.line);
    });
    return r;
  };
  bool has_text[3] = {false, false, false};  // else load_corpus splits by position
  for (const File& f : files) {
    if (!f.jsonl) {
      if (fs::file_size(f.full) > 0) has_text[static_cast<int>(split_of(f.key))] = true;
      continue;
    }
    for (const JsonlRecord& r : records(f))
      if (!r.text.empty()) has_text[static_cast<int>(split_of(str(f.key, r.line)))] = true;
  }
  if (!has_text[0] || !has_text[1] || !has_text[2]) return false;
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) { return a.key < b.key; });
  for (const File& f : files) {
    if (!f.jsonl) {
      piece(split_of(f.key), read_whole_file(f.full), true);
      continue;
    }
    for (const JsonlRecord& r : records(f)) piece(split_of(str(f.key, r.line)), r.text, true);
  }
  return true;
}

}  // namespace

bool stream_corpus(const std::string& path, const CorpusPieceFn& piece) {
  corpus_files(path);  // the same refusals as load_corpus (missing, no text files)
  if (fs::is_directory(path)) return stream_folder(path, piece);
  stream_single_file(path, piece);
  return true;
}

}  // namespace hippo
