// Token caches: a corpus split tokenised once into a binary file, then memory-mapped.
//
// File layout (little-endian):
//   0  char[8] "HIPPOTOK"        24  u64 source_hash       56  u64 header_hash (FNV-1a of
//   8  u32 version (1)           32  u64 source_bytes          bytes 0..55 and the id string)
//   12 u32 width (2 or 4)        40  u64 token_count       64  tokenizer id (id_len bytes),
//   16 u32 vocab_size            48  u64 payload_hash          zero-padded to a multiple of 64
//   20 u32 id_len                                          then token_count ids of `width` bytes
// A file is "corrupt" when any of that does not hold (bad magic or version, a header or payload
// hash mismatch, a size other than header + token_count * width) and "stale" when it is sound
// but was built from another source or tokenizer; either way load_or_build rebuilds it.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace hippo {

// What a cache was built from.
struct TokenCacheKey {
  std::string tokenizer_id;   // Tokenizer::id()
  uint64_t source_hash = 0;   // fingerprint of the source (e.g. corpus_stamp)
  uint64_t source_bytes = 0;  // size of the source

  bool operator==(const TokenCacheKey&) const = default;
};

// A read-only, memory-mapped cache file. Movable, not copyable.
class TokenCache {
 public:
  // Maps and validates path. Returns nullopt, with the reason in *why ("missing", "corrupt:
  // ...", "stale: ..."), when the file cannot be used for key.
  static std::optional<TokenCache> open(const std::string& path, const TokenCacheKey& key,
                                        std::string* why = nullptr);

  // A token shard written by `hippo tokenize --shards` (the same file layout): any source, but
  // tokenized by `tokenizer_id`. Throws hippo::Error naming the file and the offset at fault
  // (truncated, bad magic, checksums, another tokenizer).
  static TokenCache open_shard(const std::string& path, const std::string& tokenizer_id);
  // Several shards of one split, read as one stream in the order given (each memory-mapped
  // and checked as open_shard does); all must come from the same source (the source hash and
  // size in their headers) and share width and vocabulary size, else an Error names the file.
  // Their id checksums are not checked on opening (that would read every page of a corpus
  // larger than memory on every rank): verify() does, for the files a range touches.
  static TokenCache open_shards(const std::vector<std::string>& paths, const std::string& tokenizer_id);
  // Checks the id checksum (offset 48) of every file holding ids in [begin, end) not checked
  // yet; throws hippo::Error naming the file. A no-op for what open/open_shard opened.
  void verify(size_t begin, size_t end) const;
  // A fingerprint of the ids from the headers alone (no reading): one file's id checksum, or a
  // hash of the files' checksums in order.
  uint64_t content_hash() const;

  TokenCache(TokenCache&& o) noexcept;
  TokenCache& operator=(TokenCache&& o) noexcept;
  TokenCache(const TokenCache&) = delete;
  TokenCache& operator=(const TokenCache&) = delete;
  ~TokenCache();

  size_t size() const { return count_; }
  int width() const { return width_; }  // bytes per stored id: 2 or 4
  int32_t vocab_size() const { return vocab_size_; }
  int32_t operator[](size_t i) const {
    if (parts_.size() > 1) return at_part(i);
    return width_ == 2 ? static_cast<const uint16_t*>(data_)[i]
                       : static_cast<int32_t>(static_cast<const uint32_t*>(data_)[i]);
  }
  size_t parts() const { return parts_.size(); }  // files mapped (1 for a cache)
  // Copies ids [begin, begin + n) to out; throws hippo::Error when out of range.
  void read(size_t begin, size_t n, int32_t* out) const;
  std::vector<int32_t> to_vector() const;

 private:
  TokenCache() = default;
  // Mapped and checked, whatever it was built from (*stored: what it says that was).
  static std::optional<TokenCache> open_sound(const std::string& path, std::string* why,
                                              TokenCacheKey* stored, bool check_ids = true);
  void release();
  int32_t at_part(size_t i) const;

  // One mapped file; a TokenCache of several (open_shards) reads them as one stream.
  struct Part {
    void* map = nullptr;
    size_t map_size = 0;
    const void* data = nullptr;
    size_t first = 0, count = 0;  // its ids are [first, first + count) of the stream
    uint64_t payload_hash = 0;
    std::string path;
    mutable bool verified = false;
  };
  std::vector<Part> parts_;
  const void* data_ = nullptr;  // parts_[0]'s ids
  size_t count_ = 0;
  int width_ = 0;
  int32_t vocab_size_ = 0;
};

// Writes a cache atomically (temporary file, fsync, rename). Ids are stored as uint16 when
// vocab_size <= 65536, else uint32; throws hippo::Error for an id outside [0, vocab_size).
void write_token_cache(const std::string& path, const TokenCacheKey& key, int32_t vocab_size,
                       std::span<const int32_t> tokens);

// A token file written as it goes, for corpora larger than memory: ids are appended in pieces
// (buffered, checksummed on the way) to a temporary file beside `path`; finish() writes the
// header, fsyncs and renames it to `path`. Destroyed unfinished, the temporary is removed and
// `path` is untouched. Same layout and checks as write_token_cache.
class TokenFileWriter {
 public:
  TokenFileWriter(std::string path, TokenCacheKey key, int32_t vocab_size);
  ~TokenFileWriter();
  TokenFileWriter(const TokenFileWriter&) = delete;
  TokenFileWriter& operator=(const TokenFileWriter&) = delete;

  void append(std::span<const int32_t> ids);
  uint64_t count() const { return count_; }
  void finish();

 private:
  void flush();

  std::string path_, tmp_;
  TokenCacheKey key_;
  int32_t vocab_size_;
  uint32_t width_;
  int fd_ = -1;
  std::string buf_;
  uint64_t count_ = 0, payload_hash_;
};

// Opens path if it is a sound cache for key; otherwise calls make(), writes the result and
// opens that. *rebuilt_because (if given) is set to why it rebuilt, or cleared.
TokenCache load_or_build_token_cache(const std::string& path, const TokenCacheKey& key,
                                     int32_t vocab_size,
                                     const std::function<std::vector<int32_t>()>& make,
                                     std::string* rebuilt_because = nullptr);

}  // namespace hippo
