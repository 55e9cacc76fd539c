#include "data/shards.h"

#include <omp.h>

#include <atomic>
#include <exception>
#include <filesystem>

#include "core/error.h"
#include "core/threads.h"
#include "data/hash.h"

namespace hippo {

namespace fs = std::filesystem;

std::vector<int32_t> tokenize_split_parallel(const Corpus& corpus, Split split, const Tokenizer& tok,
                                             const TokenizeProgress& progress) {
  std::vector<const Document*> docs;
  uint64_t total = 0;
  for (const Document& d : corpus.docs)
    if (d.split == split) {
      docs.push_back(&d);
      total += d.text.size();
    }
  std::vector<std::vector<int32_t>> ids(docs.size());
  std::atomic<uint64_t> done{0};
  std::exception_ptr error;
  const int64_t n = static_cast<int64_t>(docs.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(num_threads())
  for (int64_t i = 0; i < n; ++i) {
    try {
      ids[i] = tok.encode(docs[i]->text);
    } catch (...) {
#pragma omp critical(hippo_tokenize_error)
      if (!error) error = std::current_exception();
    }
    const uint64_t now = done += docs[i]->text.size();
    if (progress && omp_get_thread_num() == 0) progress(now, total);
  }
  if (error) std::rethrow_exception(error);
  if (progress) progress(total, total);
  size_t count = 0;
  for (size_t i = 0; i < docs.size(); ++i) count += ids[i].size() + (docs[i]->ends_document ? 1 : 0);
  std::vector<int32_t> out;
  out.reserve(count);
  for (size_t i = 0; i < docs.size(); ++i) {
    out.insert(out.end(), ids[i].begin(), ids[i].end());
    std::vector<int32_t>().swap(ids[i]);
    if (docs[i]->ends_document) out.push_back(tok.eot_id());
  }
  return out;
}

std::string shard_path(const std::string& dir, Split split) {
  return (fs::path(dir) / str(split_name(split), ".tok")).string();
}

bool is_shard_folder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::is_regular_file(shard_path(path, Split::Train), ec);
}

TokenCache whole_corpus_tokens(const std::string& corpus_path, const Tokenizer& tok,
                               const std::string& cache_path, std::string* rebuilt_because) {
  const SourceStamp stamp = corpus_stamp(corpus_path);
  // "whole": not a split of the same corpus, whose cache key would otherwise be the same.
  const TokenCacheKey key{tok.id(), fnv1a64(std::string_view("whole"), stamp.hash), stamp.bytes};
  return load_or_build_token_cache(
      cache_path, key, tok.vocab_size(),
      [&] {
        Corpus corpus = load_corpus(corpus_path);
        for (Document& d : corpus.docs) d.split = Split::Train;
        return tokenize_split_parallel(corpus, Split::Train, tok);
      },
      rebuilt_because);
}

ShardCounts write_token_shards(const std::string& corpus_path, const Tokenizer& tok,
                               const std::string& out_dir, const TokenizeProgress& progress) {
  HIPPO_CHECK(!is_shard_folder(corpus_path), "hippo tokenize --shards: ", corpus_path,
              " holds shards already (train.tok); give the text corpus they came from");
  const SourceStamp stamp = corpus_stamp(corpus_path);
  const Corpus corpus = load_corpus(corpus_path);
  ShardCounts counts;
  for (Split s : {Split::Train, Split::Validation, Split::Test}) {
    bool any = false;
    for (const Document& d : corpus.docs) any |= d.split == s && !d.text.empty();
    HIPPO_CHECK(any, "corpus ", corpus_path, ": the ", split_name(s),
                " split is empty; train, validation and test each need some text");
    const std::vector<int32_t> ids = tokenize_split_parallel(corpus, s, tok, progress);
    write_token_cache(shard_path(out_dir, s), TokenCacheKey{tok.id(), stamp.hash, stamp.bytes},
                      tok.vocab_size(), ids);
    counts.tokens[static_cast<int>(s)] = ids.size();
  }
  return counts;
}

}  // namespace hippo
