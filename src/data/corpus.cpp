#include "data/corpus.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"
#include "data/hash.h"
#include "data/jsonl.h"
#include "data/shards.h"
#include "data/read_file.h"

namespace hippo {

namespace fs = std::filesystem;

const char* split_name(Split s) {
  switch (s) {
    case Split::Train: return "train";
    case Split::Validation: return "validation";
    case Split::Test: return "test";
  }
  return "?";
}

Split parse_split(const std::string& name) {
  if (name == "train") return Split::Train;
  if (name == "validation" || name == "valid" || name == "val") return Split::Validation;
  if (name == "test") return Split::Test;
  fail("unknown split '", name, "' (expected train, validation or test)");
}

Split split_of(std::string_view doc_name) {
  // FNV-1a's low bits are weak for short similar names (ca01, ca02, ...): mix before reducing.
  uint64_t h = fnv1a64(doc_name);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  const uint64_t bucket = h % 100;
  return bucket < 90 ? Split::Train : bucket < 95 ? Split::Validation : Split::Test;
}

bool is_brown_folder(const std::string& path) {
  return fs::is_directory(path) && fs::is_regular_file(fs::path(path) / "CONTENTS") &&
         fs::is_regular_file(fs::path(path) / "ca01");
}

static bool is_brown_doc_name(const std::string& f) {
  return f.size() == 4 && f[0] == 'c' && f[1] >= 'a' && f[1] <= 'r' && std::isdigit(f[2]) &&
         std::isdigit(f[3]);
}

// std::filesystem throws its own errors ("filesystem error: ... [path]"); the user gets one
// naming the corpus and the path at fault instead.
template <typename F>
static auto with_fs_errors(const std::string& corpus, F f) -> decltype(f()) {
  try {
    return f();
  } catch (const fs::filesystem_error& e) {
    fail("corpus ", corpus, ": ", e.path1().empty() ? std::string() : e.path1().string() + ": ",
         e.code().message());
  }
}

static std::vector<std::string> corpus_files_unchecked(const std::string& path) {
  HIPPO_CHECK(fs::exists(path), "corpus ", path, ": no such file or folder");
  std::vector<std::string> files;
  if (!fs::is_directory(path)) {
    files.push_back(path);
    return files;
  }
  const bool brown = is_brown_folder(path);
  if (brown) {
    for (const auto& e : fs::directory_iterator(path))
      if (e.is_regular_file() && is_brown_doc_name(e.path().filename().string()))
        files.push_back(e.path().string());
  } else {
    for (const auto& e : fs::recursive_directory_iterator(path))
      if (e.is_regular_file() && (e.path().extension() == ".txt" || e.path().extension() == ".jsonl"))
        files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  HIPPO_CHECK(!files.empty(), "corpus ", path, ": no ", brown ? "Brown documents" : ".txt or .jsonl files",
              " in the folder");
  return files;
}

std::vector<std::string> corpus_files(const std::string& path) {
  return with_fs_errors(path, [&] { return corpus_files_unchecked(path); });
}

static SourceStamp corpus_stamp_unchecked(const std::string& path) {
  SourceStamp s;
  // The tag names the split rule too, so that a cache built under an older rule is stale:
  // text-v2 splits single files and hash-starved folders by position (load_corpus).
  s.hash = fnv1a64(is_brown_folder(path) ? "brown-v1" : "text-v2");
  for (const std::string& f : corpus_files(path)) {
    // JSONL files were once read as raw bytes: a cache built so is stale.
    if (is_jsonl_path(f)) s.hash = fnv1a64(std::string_view("jsonl-v1"), s.hash);
    const uint64_t size = fs::file_size(f);
    const int64_t mtime = fs::last_write_time(f).time_since_epoch().count();
    s.hash = fnv1a64(fs::relative(f, path).string(), s.hash);
    s.hash = fnv1a64(&size, sizeof size, s.hash);
    s.hash = fnv1a64(&mtime, sizeof mtime, s.hash);
    s.bytes += size;
  }
  return s;
}

SourceStamp corpus_stamp(const std::string& path) {
  return with_fs_errors(path, [&] { return corpus_stamp_unchecked(path); });
}

std::string strip_brown_tags(std::string_view tagged) {
  std::string out;
  bool line_open = false, glue_next = false;
  size_t i = 0;
  while (i < tagged.size()) {
    // Sentences are lines of word/tag tokens; blank lines separate them.
    const size_t eol = std::min(tagged.find('\n', i), tagged.size());
    std::string_view line = tagged.substr(i, eol - i);
    i = eol + 1;
    size_t p = 0;
    while (p < line.size()) {
      while (p < line.size() && (line[p] == ' ' || line[p] == '\t' || line[p] == '\r')) ++p;
      size_t q = p;
      while (q < line.size() && line[q] != ' ' && line[q] != '\t' && line[q] != '\r') ++q;
      if (q == p) break;
      std::string_view tok = line.substr(p, q - p);
      p = q;
      const size_t slash = tok.rfind('/');
      std::string_view word = (slash == std::string_view::npos || slash == 0) ? tok
                                                                              : tok.substr(0, slash);
      const bool opening = word == "``" || word == "(" || word == "[";
      const bool closing = word == "''" || word == "," || word == "." || word == ";" ||
                           word == ":" || word == "?" || word == "!" || word == ")" ||
                           word == "]";
      if (word == "``" || word == "''") word = "\"";
      if (line_open && !closing && !glue_next) out.push_back(' ');
      out += word;
      line_open = true;
      glue_next = opening;
    }
    if (line_open) out.push_back('\n');
    line_open = glue_next = false;
  }
  return out;
}

namespace {

// A stretch of text that ends a document (or not) and has a name.
struct Segment {
  std::string name;
  std::string_view text;
  bool ends_document = true;
};

// Where validation and test begin, as byte offsets into the concatenated segments: 90% / 5% /
// 5%, each cut moved forward to just after a line break (or the start of a segment) within
// half of the following split, else to a UTF-8 character boundary. Every split gets at least
// one byte when there are at least 3; `ok` is false below that.
struct Cuts {
  size_t validation = 0, test = 0;
  bool ok = false;
};

Cuts position_cuts(const std::vector<Segment>& segs) {
  std::vector<size_t> starts;
  size_t total = 0;
  for (const Segment& s : segs) {
    starts.push_back(total);
    total += s.text.size();
  }
  Cuts c;
  if (total < 3) return c;
  auto byte_at = [&](size_t g) {  // g < total
    const size_t i = static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), g) -
                                         starts.begin()) - 1;
    return static_cast<unsigned char>(segs[i].text[g - starts[i]]);
  };
  auto snap = [&](size_t at, size_t limit) {  // a cut in [at, limit], limit < total
    for (size_t g = at; g <= limit; ++g)
      if (std::binary_search(starts.begin(), starts.end(), g) || byte_at(g - 1) == '\n') return g;
    size_t g = at;
    while (g < limit && (byte_at(g) & 0xC0) == 0x80) ++g;
    return g;
  };
  const size_t v = std::clamp<size_t>(total / 100 * 90 + total % 100 * 90 / 100, 1, total - 2);
  const size_t t = std::clamp<size_t>(total / 100 * 95 + total % 100 * 95 / 100, v + 1, total - 1);
  c.validation = snap(v, v + (t - v) / 2);  // < t
  c.test = snap(t, t + (total - 1 - t) / 2);  // < total
  c.ok = true;
  return c;
}

// Cuts the segments at the two offsets and calls add(segment, piece, split, ends_document) for
// every non-empty piece, in order. The last piece of a segment ends the document if the segment
// does.
template <typename Add>
void cut_by_position(const std::vector<Segment>& segs, const Cuts& cuts, Add add) {
  size_t g = 0;
  for (const Segment& seg : segs) {
    const size_t begin = g, end = g + seg.text.size();
    g = end;
    const size_t bounds[4] = {begin, std::clamp(cuts.validation, begin, end),
                              std::clamp(cuts.test, begin, end), end};
    int last = -1;
    for (int k = 0; k < 3; ++k)
      if (bounds[k + 1] > bounds[k]) last = k;
    for (int k = 0; k <= last; ++k) {
      if (bounds[k + 1] == bounds[k]) continue;
      add(seg, seg.text.substr(bounds[k] - begin, bounds[k + 1] - bounds[k]), static_cast<Split>(k),
          k == last && seg.ends_document);
    }
  }
}

// A single text file: split by position, then cut at each <|endoftext|> and into ~64 KiB
// pieces at line breaks (bounded tokenizer calls), named "<file name>#<index>" in text order.
void split_single_file(const std::string& name, std::string_view text, Corpus& c) {
  std::vector<Segment> segs;
  for (;;) {
    const size_t at = text.find(kEndOfText);
    segs.push_back({name, text.substr(0, at), true});
    if (at == std::string_view::npos) break;
    text.remove_prefix(at + kEndOfText.size());
  }
  constexpr size_t kPiece = 64 * 1024;
  size_t index = 0;
  const Cuts cuts = position_cuts(segs);
  auto add = [&](const Segment&, std::string_view part, Split split, bool ends) {
    while (!part.empty()) {
      size_t cut = part.size();
      if (cut > kPiece) {
        const size_t nl = part.find('\n', kPiece);
        cut = nl == std::string_view::npos ? part.size() : nl + 1;
      }
      c.docs.push_back({str(name, '#', index++), std::string(part.substr(0, cut)), split,
                        ends && cut == part.size()});
      part.remove_prefix(cut);
    }
  };
  if (cuts.ok) {
    cut_by_position(segs, cuts, add);
  } else {  // under 3 bytes: all of it (if anything) to train; split_tokens refuses the rest
    for (const Segment& s : segs) add(s, s.text, Split::Train, true);
  }
  c.split_by_position = true;
}

// Documents of a folder, sorted by name: split by name hash, or by position when the hash
// would leave a split without text (a folder of one or a few files).
void assign_folder_splits(Corpus& c) {
  bool has_text[3] = {false, false, false};
  for (Document& d : c.docs) {
    d.split = split_of(d.name);
    has_text[static_cast<int>(d.split)] |= !d.text.empty();
  }
  if (has_text[0] && has_text[1] && has_text[2]) return;
  std::vector<Segment> segs;
  for (const Document& d : c.docs) segs.push_back({d.name, d.text, true});
  const Cuts cuts = position_cuts(segs);
  if (!cuts.ok) return;  // under 3 bytes of text: split_tokens refuses the empty splits
  std::vector<Document> docs;
  std::string last_name;
  int piece = 0;
  cut_by_position(segs, cuts, [&](const Segment& seg, std::string_view part, Split split, bool ends) {
    // A document cut in pieces is named "<name>#0", "<name>#1", ...; a whole one keeps its name.
    const bool whole = ends && part.size() == seg.text.size();
    piece = seg.name == last_name ? piece + 1 : 0;
    last_name = seg.name;
    docs.push_back({whole ? seg.name : str(seg.name, '#', piece), std::string(part), split, ends});
  });
  c.docs = std::move(docs);
  c.split_by_position = true;
}

}  // namespace

static Corpus load_corpus_unchecked(const std::string& path) {
  Corpus c;
  const std::vector<std::string> files = corpus_files(path);
  if (!fs::is_directory(path)) {
    std::string text = read_whole_file(path);
    if (is_jsonl_path(path)) {  // its records as documents of one text file, in order
      std::string joined;
      bool first = true;
      for (const JsonlRecord& r : parse_jsonl_texts(text, path)) {
        if (!first) joined += kEndOfText;
        joined += r.text;
        first = false;
      }
      text = std::move(joined);
    }
    split_single_file(fs::path(path).filename().string(), text, c);
    return c;  // in text order
  }
  if (is_brown_folder(path)) {
    for (const std::string& f : files)
      c.docs.push_back({fs::path(f).filename().string(), strip_brown_tags(read_whole_file(f))});
  } else {
    for (const std::string& f : files) {
      const std::string name = fs::relative(f, path).string();
      if (!is_jsonl_path(f)) {
        c.docs.push_back({name, read_whole_file(f)});
        continue;
      }
      for (JsonlRecord& r : parse_jsonl_texts(read_whole_file(f), f))  // a document per record
        c.docs.push_back({str(name, ":", r.line), std::move(r.text)});
    }
  }
  std::sort(c.docs.begin(), c.docs.end(),
            [](const Document& a, const Document& b) { return a.name < b.name; });
  assign_folder_splits(c);
  return c;
}

Corpus load_corpus(const std::string& path) {
  return with_fs_errors(path, [&] { return load_corpus_unchecked(path); });
}

std::vector<int32_t> tokenize_split(const Corpus& corpus, Split split, const Tokenizer& tok) {
  std::vector<int32_t> out;
  for (const Document& d : corpus.docs) {
    if (d.split != split) continue;
    const std::vector<int32_t> ids = tok.encode(d.text);
    out.insert(out.end(), ids.begin(), ids.end());
    if (d.ends_document) out.push_back(tok.eot_id());
  }
  return out;
}

std::string default_cache_path(const std::string& cache_dir, const std::string& corpus_path,
                               Split split, const Tokenizer& tok) {
  std::string corpus_name = fs::path(corpus_path).lexically_normal().filename().string();
  if (corpus_name.empty())
    corpus_name = fs::path(corpus_path).lexically_normal().parent_path().filename().string();
  std::string tok_name = tok.id();
  for (char& ch : tok_name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') ch = '-';
  return (fs::path(cache_dir) / str(corpus_name, '.', split_name(split), '.', tok_name, ".tok"))
      .string();
}

TokenCache split_tokens(const std::string& corpus_path, Split split, const Tokenizer& tok,
                        const std::string& cache_path, std::string* rebuilt_because) {
  const SourceStamp stamp = corpus_stamp(corpus_path);
  const TokenCacheKey key{tok.id(), stamp.hash, stamp.bytes};
  auto refuse_empty = [&](const std::string& why) {
    fail("corpus ", corpus_path, ": the ", split_name(split), " split is empty (", why,
         "); train, validation and test each need some text");
  };
  TokenCache c = load_or_build_token_cache(
      cache_path, key, tok.vocab_size(),
      [&] {
        const Corpus corpus = load_corpus(corpus_path);
        bool any = false;
        size_t bytes = 0;
        for (const Document& d : corpus.docs) {
          any |= d.split == split && !d.text.empty();
          bytes += d.text.size();
        }
        if (!any) refuse_empty(str("the corpus has ", bytes, " bytes of text, at least 3 needed"));
        return tokenize_split_parallel(corpus, split, tok);
      },
      rebuilt_because);
  // A split with text has at least one token and an end-of-text; anything less is refused even
  // from a cache (one written by hand, say).
  if (c.size() < 2) refuse_empty(str("its token cache ", cache_path, " holds ", c.size(), " tokens"));
  return c;
}

std::string resolve_corpus_path(const std::string& data) {
  if (data != "brown") return data;
  HIPPO_CHECK(std::filesystem::exists("data/brown"),
              "the Brown corpus is not in data/brown: run scripts/get_brown.sh first");
  return "data/brown";
}

}  // namespace hippo
