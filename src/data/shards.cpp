#include "data/shards.h"

#include <omp.h>

#include <atomic>
#include <exception>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <span>

#include "core/error.h"
#include "core/threads.h"
#include "data/corpus_stream.h"
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

std::string shard_path(const std::string& dir, Split split, int index) {
  char n[16];
  std::snprintf(n, sizeof n, "-%05d.tok", index);
  return (fs::path(dir) / str(split_name(split), n)).string();
}

std::vector<std::string> shard_paths(const std::string& dir, Split split) {
  std::error_code ec;
  std::vector<std::string> out;
  for (int i = 0; fs::is_regular_file(shard_path(dir, split, i), ec); ++i)
    out.push_back(shard_path(dir, split, i));
  if (out.empty() && fs::is_regular_file(shard_path(dir, split), ec)) out.push_back(shard_path(dir, split));
  HIPPO_CHECK(!out.empty(), "token shards ", dir, ": no ", split_name(split), "-00000.tok (nor ",
              split_name(split), ".tok) in the folder");
  return out;
}

bool is_shard_folder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && (fs::is_regular_file(shard_path(path, Split::Train), ec) ||
                                        fs::is_regular_file(shard_path(path, Split::Train, 0), ec));
}

TokenCache open_split_shards(const std::string& dir, Split split, const std::string& tokenizer_id) {
  return TokenCache::open_shards(shard_paths(dir, split), tokenizer_id);
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

namespace {

// One split's shard files, written as ids arrive: a new file every `limit` ids.
class SplitShardWriter {
 public:
  SplitShardWriter(std::string dir, Split split, TokenCacheKey key, int32_t vocab, uint64_t limit)
      : dir_(std::move(dir)), split_(split), key_(std::move(key)), vocab_(vocab), limit_(limit) {}

  void append(std::span<const int32_t> ids) {
    while (!ids.empty()) {
      if (!cur_) cur_ = std::make_unique<TokenFileWriter>(shard_path(dir_, split_, files_), key_, vocab_);
      const size_t k = static_cast<size_t>(std::min<uint64_t>(ids.size(), limit_ - cur_->count()));
      cur_->append(ids.first(k));
      ids = ids.subspan(k);
      tokens_ += k;
      if (cur_->count() == limit_) close();
    }
  }
  // Finishes the last file and removes what an earlier run left beyond it.
  void finish() {
    close();
    std::error_code ec;
    for (int i = files_; fs::exists(shard_path(dir_, split_, i), ec); ++i) fs::remove(shard_path(dir_, split_, i), ec);
    fs::remove(shard_path(dir_, split_), ec);
  }
  uint64_t tokens() const { return tokens_; }
  int files() const { return files_; }

 private:
  void close() {
    if (!cur_) return;
    cur_->finish();
    cur_.reset();
    ++files_;
  }

  std::string dir_;
  Split split_;
  TokenCacheKey key_;
  int32_t vocab_;
  uint64_t limit_, tokens_ = 0;
  int files_ = 0;
  std::unique_ptr<TokenFileWriter> cur_;
};

}  // namespace

ShardCounts write_token_shards(const std::string& corpus_path, const Tokenizer& tok,
                               const std::string& out_dir, const TokenizeProgress& progress,
                               uint64_t shard_tokens) {
  HIPPO_CHECK(!is_shard_folder(corpus_path), "hippo tokenize --shards: ", corpus_path,
              " holds shards already (train.tok); give the text corpus they came from");
  HIPPO_CHECK(shard_tokens >= 1, "hippo tokenize --shard-tokens ", shard_tokens, " must be at least 1");
  const SourceStamp stamp = corpus_stamp(corpus_path);
  const TokenCacheKey key{tok.id(), stamp.hash, stamp.bytes};
  std::vector<SplitShardWriter> writers;
  for (Split s : {Split::Train, Split::Validation, Split::Test})
    writers.emplace_back(out_dir, s, key, tok.vocab_size(), shard_tokens);
  bool has_text[3] = {false, false, false};

  // Pieces (~64 KiB for a single file) are gathered into a batch of ~1 MiB per thread,
  // tokenized in parallel (one piece per task), then written in order: memory holds one batch
  // of text and its ids (4 bytes per id while in memory).
  struct Piece {
    Split split;
    std::string text;
    bool ends;
  };
  const size_t kBatchBytes = static_cast<size_t>(std::max(1, num_threads())) << 20;
  std::vector<Piece> batch;
  std::vector<std::vector<int32_t>> ids;
  size_t batch_bytes = 0;
  uint64_t done = 0;
  auto flush = [&] {
    ids.assign(batch.size(), {});
    std::exception_ptr error;
    const int64_t n = static_cast<int64_t>(batch.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(num_threads())
    for (int64_t i = 0; i < n; ++i) {
      try {
        ids[i] = tok.encode(batch[i].text);
      } catch (...) {
#pragma omp critical(hippo_tokenize_error)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    const int32_t eot = tok.eot_id();
    for (int64_t i = 0; i < n; ++i) {
      SplitShardWriter& w = writers[static_cast<int>(batch[i].split)];
      w.append(ids[i]);
      if (batch[i].ends) w.append(std::span<const int32_t>(&eot, 1));
    }
    done += batch_bytes;
    batch.clear();
    batch_bytes = 0;
    if (progress) progress(std::min(done, stamp.bytes), stamp.bytes);
  };
  auto piece = [&](Split split, std::string_view text, bool ends) {
    has_text[static_cast<int>(split)] |= !text.empty();
    batch.push_back({split, std::string(text), ends});
    batch_bytes += text.size();
    if (batch_bytes >= kBatchBytes) flush();
  };
  if (!stream_corpus(corpus_path, piece)) {  // read whole (see stream_corpus)
    const Corpus corpus = load_corpus(corpus_path);
    for (const Document& d : corpus.docs) piece(d.split, d.text, d.ends_document);
  }
  flush();
  ShardCounts counts;
  for (Split s : {Split::Train, Split::Validation, Split::Test}) {
    HIPPO_CHECK(has_text[static_cast<int>(s)], "corpus ", corpus_path, ": the ", split_name(s),
                " split is empty; train, validation and test each need some text");
  }
  for (Split s : {Split::Train, Split::Validation, Split::Test}) {
    SplitShardWriter& w = writers[static_cast<int>(s)];
    w.finish();
    counts.tokens[static_cast<int>(s)] = w.tokens();
    counts.files[static_cast<int>(s)] = w.files();
  }
  if (progress) progress(stamp.bytes, stamp.bytes);
  return counts;
}

}  // namespace hippo
