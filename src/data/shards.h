// Pre-tokenized corpora: `hippo tokenize --shards DIR` writes each split of a corpus as token
// files of at most --shard-tokens ids, DIR/train-00000.tok, train-00001.tok, ...,
// validation-00000.tok, ..., test-00000.tok, ... (a folder of one file per split, train.tok,
// validation.tok, test.tok, as written before, reads too), in the token-cache layout
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

// Where a split's single shard lives in a shard folder (the layout before numbered shards).
std::string shard_path(const std::string& dir, Split split);
// Numbered shard `index` of a split: DIR/<split>-<index, 5 digits>.tok.
std::string shard_path(const std::string& dir, Split split, int index);
// The shard files of a split in order: <split>-00000.tok, -00001.tok, ... while they exist, or
// else <split>.tok. Throws hippo::Error naming the folder when there are none.
std::vector<std::string> shard_paths(const std::string& dir, Split split);
// A folder holding train.tok or train-00000.tok (a shard folder, as --data).
bool is_shard_folder(const std::string& path);
// The shards of a split memory-mapped as one stream (TokenCache::open_shards).
TokenCache open_split_shards(const std::string& dir, Split split, const std::string& tokenizer_id);

// Ids per shard file unless --shard-tokens says otherwise: 2^27 (256 MiB of uint16 ids).
inline constexpr uint64_t kDefaultShardTokens = uint64_t{1} << 27;

// Every document of a corpus, whatever its split (an explicit validation set, --val-data), in
// the order of load_corpus, cached at cache_path like split_tokens.
TokenCache whole_corpus_tokens(const std::string& corpus_path, const Tokenizer& tok,
                               const std::string& cache_path, std::string* rebuilt_because = nullptr);

struct ShardCounts {
  uint64_t tokens[3] = {0, 0, 0};  // by Split
  int files[3] = {0, 0, 0};
};
// Writes the shards of the corpus at corpus_path: the corpus is read piece by piece
// (data/corpus_stream.h) where it can be, tokenized in bounded batches on all threads, and
// written as it goes, each file atomically; shards of an earlier run beyond the new ones are
// removed. Memory does not grow with the corpus (only with its largest file, for a folder).
// Throws for a split without text, as split_tokens does.
ShardCounts write_token_shards(const std::string& corpus_path, const Tokenizer& tok,
                               const std::string& out_dir, const TokenizeProgress& progress = {},
                               uint64_t shard_tokens = kDefaultShardTokens);

}  // namespace hippo
