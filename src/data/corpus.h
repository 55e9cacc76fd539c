// Text corpora: documents read from a text file, a folder of .txt files, or the Brown corpus
// (scripts/get_brown.sh), split by document into train / validation / test, and tokenised
// into token caches.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/token_cache.h"
#include "data/tokenizer.h"

namespace hippo {

enum class Split { Train, Validation, Test };
const char* split_name(Split s);  // "train", "validation", "test"
Split parse_split(const std::string& name);  // throws hippo::Error for other names

struct Document {
  std::string name;  // stable identifier
  std::string text;
  Split split = Split::Train;  // decided by load_corpus (see there)
  // False for a piece cut from a longer document: no end-of-text token follows it, so the
  // token stream of a split has end-of-text only where a real document ends.
  bool ends_document = true;
};

struct Corpus {
  std::vector<Document> docs;  // a folder's sorted by name, a single file's in text order
  bool split_by_position = false;  // see load_corpus
};

// Which split a document of a multi-document corpus belongs to: a hash of its name, ~90% train,
// 5% validation, 5% test. Depends on nothing but the name, so it is stable across runs,
// machines and corpus changes.
Split split_of(std::string_view doc_name);

// The files a corpus path stands for, sorted: a Brown folder (one holding CONTENTS and the
// files c[a-r][0-9][0-9]) gives its 500 tagged files; another folder its *.txt and *.jsonl files
// (recursively); a file itself. Throws hippo::Error when the path does not exist or has no
// text files.
std::vector<std::string> corpus_files(const std::string& path);
bool is_brown_folder(const std::string& path);

// The path a --data argument names: "brown" is data/brown (fetched by scripts/get_brown.sh;
// an Error says so when it is missing); anything else is a path as given.
std::string resolve_corpus_path(const std::string& data);

// Fingerprint of the corpus from its files' names, sizes and modification times (no reading).
struct SourceStamp {
  uint64_t hash = 0;
  uint64_t bytes = 0;
};
SourceStamp corpus_stamp(const std::string& path);

// Reads the documents and assigns each to a split. Brown: one document per file, tags
// stripped. Folder: one document per .txt file, named by its path relative to the folder, and
// one per record of a .jsonl file (data/jsonl.h), named "<path>:<line>".
// Both split by split_of(name), unless that would leave a split without text (a folder of a
// few files): then, as for a single file, by position.
// Single file: split by position, so that one document of any size gets all three splits: the
// first 90% of its bytes train, the next 5% validation, the last 5% test (each cut moved to
// just after a nearby line break, or else to a UTF-8 character boundary). Its text is then
// cut into documents at each "<|endoftext|>" and into pieces of ~64 KiB at line breaks, named
// "<file name>#<index>" in order. A single .jsonl file is read as the text file of its records
// joined by "<|endoftext|>" (so it gives the tokens of that text file). A corpus of fewer than 3 bytes leaves splits empty, which
// split_tokens refuses.
Corpus load_corpus(const std::string& path);

// Brown corpus form C ("\tThe/at jury/nn said/vbd ./.") to plain text: tags removed, one
// sentence per line, `` and '' as ", no space before closing punctuation or after opening.
std::string strip_brown_tags(std::string_view tagged);

// The tokens of one split: each document's tokens, followed by the tokenizer's eot id where a
// document ends. Empty when the split has no documents.
std::vector<int32_t> tokenize_split(const Corpus& corpus, Split split, const Tokenizer& tok);

// Where split_tokens keeps a cache by default: <cache_dir>/<corpus name>.<split>.<tokenizer>.tok
std::string default_cache_path(const std::string& cache_dir, const std::string& corpus_path,
                               Split split, const Tokenizer& tok);

// The tokens of one split from the cache at cache_path, building the cache first if it is
// missing, stale (corpus files, split rule or tokenizer changed) or corrupt. Throws
// hippo::Error naming the corpus and the split when the split has no text.
TokenCache split_tokens(const std::string& corpus_path, Split split, const Tokenizer& tok,
                        const std::string& cache_path, std::string* rebuilt_because = nullptr);

}  // namespace hippo
