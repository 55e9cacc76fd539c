// Pre-tokenized corpora: `hippo tokenize --shards DIR` writes each split of a corpus as one
// token file, DIR/train.tok, DIR/validation.tok, DIR/test.tok, in the token-cache layout
// (data/token_cache.h: magic "HIPPOTOK", version, id width 2 or 4, vocabulary size, tokenizer
// id, token count, checksums, then the ids). Training memory-maps them (--data DIR): nothing is
// read into memory, and a rank touches only the pages of the windows it samples.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/corpus.h"
#include "data/token_cache.h"
#include "data/tokenizer.h"

namespace hippo {

// Called now and then with the bytes of text tokenized so far and the total.
using TokenizeProgress = std::function<void(uint64_t done, uint64_t total)>;

// tokenize_split on all threads (documents in parallel, joined in order): the same tokens.
std::vector<int32_t> tokenize_split_parallel(const Corpus& corpus, Split split, const Tokenizer& tok,
                                             const TokenizeProgress& progress = {});

// Where a split's shard lives in a shard folder.
std::string shard_path(const std::string& dir, Split split);
// A folder holding train.tok (a shard folder, as --data).
bool is_shard_folder(const std::string& path);

// Every document of a corpus, whatever its split (an explicit validation set, --val-data), in
// the order of load_corpus, cached at cache_path like split_tokens.
TokenCache whole_corpus_tokens(const std::string& corpus_path, const Tokenizer& tok,
                               const std::string& cache_path, std::string* rebuilt_because = nullptr);

struct ShardCounts {
  uint64_t tokens[3] = {0, 0, 0};  // by Split
};
// Writes the three shards of the corpus at corpus_path (atomically each). Throws for a split
// without text, as split_tokens does.
ShardCounts write_token_shards(const std::string& corpus_path, const Tokenizer& tok,
                               const std::string& out_dir, const TokenizeProgress& progress = {});

}  // namespace hippo
