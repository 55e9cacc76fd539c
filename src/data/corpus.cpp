#include "data/corpus.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"
#include "data/hash.h"
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

std::vector<std::string> corpus_files(const std::string& path) {
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
      if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  HIPPO_CHECK(!files.empty(), "corpus ", path, ": no ", brown ? "Brown documents" : ".txt files",
              " in the folder");
  return files;
}

SourceStamp corpus_stamp(const std::string& path) {
  SourceStamp s;
  s.hash = fnv1a64(is_brown_folder(path) ? "brown-v1" : "text-v1");
  for (const std::string& f : corpus_files(path)) {
    const uint64_t size = fs::file_size(f);
    const int64_t mtime = fs::last_write_time(f).time_since_epoch().count();
    s.hash = fnv1a64(fs::relative(f, path).string(), s.hash);
    s.hash = fnv1a64(&size, sizeof size, s.hash);
    s.hash = fnv1a64(&mtime, sizeof mtime, s.hash);
    s.bytes += size;
  }
  return s;
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

// A single text file as documents: at each <|endoftext|>, then ~64 KiB pieces at line breaks.
void split_single_file(const std::string& name, std::string_view text, std::vector<Document>& docs) {
  constexpr size_t kPiece = 64 * 1024;
  size_t index = 0;
  auto add = [&](std::string_view part) {
    while (!part.empty()) {
      size_t cut = part.size();
      if (cut > kPiece) {
        const size_t nl = part.find('\n', kPiece);
        cut = nl == std::string_view::npos ? part.size() : nl + 1;
      }
      docs.push_back({str(name, '#', index++), std::string(part.substr(0, cut))});
      part.remove_prefix(cut);
    }
  };
  for (;;) {
    const size_t at = text.find(kEndOfText);
    add(text.substr(0, at));
    if (at == std::string_view::npos) break;
    text.remove_prefix(at + kEndOfText.size());
  }
}

}  // namespace

Corpus load_corpus(const std::string& path) {
  Corpus c;
  const std::vector<std::string> files = corpus_files(path);
  if (!fs::is_directory(path)) {
    split_single_file(fs::path(path).filename().string(), read_whole_file(path), c.docs);
  } else if (is_brown_folder(path)) {
    for (const std::string& f : files)
      c.docs.push_back({fs::path(f).filename().string(), strip_brown_tags(read_whole_file(f))});
  } else {
    for (const std::string& f : files)
      c.docs.push_back({fs::relative(f, path).string(), read_whole_file(f)});
  }
  std::sort(c.docs.begin(), c.docs.end(),
            [](const Document& a, const Document& b) { return a.name < b.name; });
  return c;
}

std::vector<int32_t> tokenize_split(const Corpus& corpus, Split split, const Tokenizer& tok) {
  std::vector<int32_t> out;
  for (const Document& d : corpus.docs) {
    if (split_of(d.name) != split) continue;
    const std::vector<int32_t> ids = tok.encode(d.text);
    out.insert(out.end(), ids.begin(), ids.end());
    out.push_back(tok.eot_id());
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
  return load_or_build_token_cache(
      cache_path, key, tok.vocab_size(),
      [&] { return tokenize_split(load_corpus(corpus_path), split, tok); }, rebuilt_because);
}

std::string resolve_corpus_path(const std::string& data) {
  if (data != "brown") return data;
  HIPPO_CHECK(std::filesystem::exists("data/brown"),
              "the Brown corpus is not in data/brown: run scripts/get_brown.sh first");
  return "data/brown";
}

}  // namespace hippo
