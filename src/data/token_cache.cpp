#include "data/token_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <utility>

#include "core/error.h"
#include "data/hash.h"
#include "io/safetensors.h"

namespace hippo {

static_assert(std::endian::native == std::endian::little, "token caches are little-endian");

namespace {

constexpr char kMagic[8] = {'H', 'I', 'P', 'P', 'O', 'T', 'O', 'K'};
constexpr uint32_t kVersion = 1;
constexpr size_t kFixedHeader = 64;
constexpr uint32_t kMaxIdLen = 4096;

struct Header {
  char magic[8];
  uint32_t version, width, vocab_size, id_len;
  uint64_t source_hash, source_bytes, token_count, payload_hash, header_hash;
};
static_assert(sizeof(Header) == kFixedHeader);

size_t data_offset(uint32_t id_len) { return (kFixedHeader + id_len + 63) / 64 * 64; }

uint64_t header_hash(const Header& h, std::string_view id) {
  return fnv1a64(id, fnv1a64(&h, offsetof(Header, header_hash)));
}

}  // namespace

void write_token_cache(const std::string& path, const TokenCacheKey& key, int32_t vocab_size,
                       std::span<const int32_t> tokens) {
  TokenFileWriter w(path, key, vocab_size);
  w.append(tokens);
  w.finish();
}

TokenFileWriter::TokenFileWriter(std::string path, TokenCacheKey key, int32_t vocab_size)
    : path_(std::move(path)), key_(std::move(key)), vocab_size_(vocab_size),
      width_(vocab_size <= 65536 ? 2 : 4), payload_hash_(kFnvOffset) {
  HIPPO_CHECK(vocab_size > 0, "token cache ", path_, ": vocab_size ", vocab_size, " must be > 0");
  HIPPO_CHECK(key_.tokenizer_id.size() <= kMaxIdLen, "token cache ", path_,
              ": tokenizer id longer than ", kMaxIdLen, " bytes");
  const std::filesystem::path target(path_), parent = target.parent_path();
  std::error_code ec;  // std::filesystem's own exception text would reach the user otherwise
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
    std::filesystem::create_directories(parent, ec);
  HIPPO_CHECK(!ec, "token cache ", path_, ": cannot create the folder ", parent.string(), ": ",
              ec.message());
  // The temporary naming of write_file_atomic (io/run_dir.h knows it), in the same folder.
  tmp_ = ((parent.empty() ? std::filesystem::path(".") : parent) /
          str(".", target.filename().string(), ".tmp", ::getpid())).string();
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  HIPPO_CHECK(fd_ >= 0, "token cache ", path_, ": cannot create temporary file ", tmp_, ": ",
              strerror(errno));
  buf_.assign(data_offset(static_cast<uint32_t>(key_.tokenizer_id.size())), '\0');  // header later
}

TokenFileWriter::~TokenFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void TokenFileWriter::append(std::span<const int32_t> ids) {
  HIPPO_CHECK(fd_ >= 0, "token cache ", path_, ": append after finish");
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t t = ids[i];
    HIPPO_CHECK(t >= 0 && t < vocab_size_, "token cache ", path_, ": token ", count_ + i, " = ", t,
                " is outside [0, ", vocab_size_, ")");
    unsigned char b[4];
    const uint32_t v = static_cast<uint32_t>(t);
    std::memcpy(b, &v, 4);  // little-endian: the low `width_` bytes are the id
    buf_.append(reinterpret_cast<const char*>(b), width_);
    payload_hash_ = fnv1a64(b, width_, payload_hash_);
    if (buf_.size() >= (size_t{1} << 20)) flush();
  }
  count_ += ids.size();
}

void TokenFileWriter::flush() {
  size_t done = 0;
  while (done < buf_.size()) {
    const ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
    HIPPO_CHECK(n >= 0, "token cache ", path_, ": write to ", tmp_, " failed: ", strerror(errno));
    done += static_cast<size_t>(n);
  }
  buf_.clear();
}

void TokenFileWriter::finish() {
  flush();
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = kVersion;
  h.width = width_;
  h.vocab_size = static_cast<uint32_t>(vocab_size_);
  h.id_len = static_cast<uint32_t>(key_.tokenizer_id.size());
  h.source_hash = key_.source_hash;
  h.source_bytes = key_.source_bytes;
  h.token_count = count_;
  h.payload_hash = payload_hash_;
  h.header_hash = header_hash(h, key_.tokenizer_id);
  std::string head(reinterpret_cast<const char*>(&h), sizeof h);
  head += key_.tokenizer_id;
  HIPPO_CHECK(::pwrite(fd_, head.data(), head.size(), 0) == static_cast<ssize_t>(head.size()),
              "token cache ", path_, ": write to ", tmp_, " failed: ", strerror(errno));
  HIPPO_CHECK(::fsync(fd_) == 0 && ::close(fd_) == 0, "token cache ", path_, ": fsync/close of ",
              tmp_, " failed: ", strerror(errno));
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_.c_str());
    fail("token cache ", path_, ": rename failed: ", strerror(err));
  }
  const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  const int dfd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::optional<TokenCache> TokenCache::open(const std::string& path, const TokenCacheKey& key,
                                           std::string* why) {
  TokenCacheKey stored;
  std::optional<TokenCache> c = open_sound(path, why, &stored);
  if (!c) return c;
  if (stored.tokenizer_id != key.tokenizer_id) {
    if (why) *why = str("stale: built by tokenizer '", stored.tokenizer_id, "', not '", key.tokenizer_id, "'");
    return std::nullopt;
  }
  if (stored.source_hash != key.source_hash || stored.source_bytes != key.source_bytes) {
    if (why) *why = "stale: the source changed";
    return std::nullopt;
  }
  return c;
}

TokenCache TokenCache::open_shard(const std::string& path, const std::string& tokenizer_id) {
  std::string why;
  TokenCacheKey stored;
  std::optional<TokenCache> c = open_sound(path, &why, &stored);
  HIPPO_CHECK(c.has_value(), "token shard ", path, ": ", why == "missing" ? "no such file" : why);
  HIPPO_CHECK(stored.tokenizer_id == tokenizer_id, "token shard ", path, ": tokenized by '",
              stored.tokenizer_id, "' (the tokenizer id at offset ", kFixedHeader,
              "), not by this run's tokenizer '", tokenizer_id, "'; give that --tokenizer, or "
              "write the shards again with this one (hippo tokenize --shards)");
  return std::move(*c);
}

TokenCache TokenCache::open_shards(const std::vector<std::string>& paths,
                                   const std::string& tokenizer_id) {
  HIPPO_CHECK(!paths.empty(), "token shards: no files given");
  auto open_one = [&](const std::string& path, TokenCacheKey* key) {
    std::string why;
    std::optional<TokenCache> c = open_sound(path, &why, key, false);
    HIPPO_CHECK(c.has_value(), "token shard ", path, ": ", why == "missing" ? "no such file" : why);
    HIPPO_CHECK(key->tokenizer_id == tokenizer_id, "token shard ", path, ": tokenized by '",
                key->tokenizer_id, "' (the tokenizer id at offset ", kFixedHeader,
                "), not by this run's tokenizer '", tokenizer_id, "'; give that --tokenizer, or "
                "write the shards again with this one (hippo tokenize --shards)");
    return std::move(*c);
  };
  TokenCacheKey first;
  TokenCache all = open_one(paths[0], &first);
  for (size_t k = 1; k < paths.size(); ++k) {
    TokenCacheKey key;
    TokenCache c = open_one(paths[k], &key);
    HIPPO_CHECK(key == first && c.width_ == all.width_ && c.vocab_size_ == all.vocab_size_,
                "token shard ", paths[k], ": written from another corpus (the source hash and size at "
                "offsets 24 and 32) or with another id width or vocabulary than ", paths[0],
                "; write the shard folder again (hippo tokenize --shards)");
    Part p = c.parts_[0];
    c.parts_.clear();  // now owned by `all`
    p.first = all.count_;
    all.parts_.push_back(p);
    all.count_ += p.count;
  }
  return all;
}

std::optional<TokenCache> TokenCache::open_sound(const std::string& path, std::string* why,
                                                 TokenCacheKey* stored, bool check_ids) {
  auto refuse = [&](const std::string& reason) -> std::optional<TokenCache> {
    if (why) *why = reason;
    return std::nullopt;
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return refuse(errno == ENOENT ? "missing" : str("cannot open: ", strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(kFixedHeader)) {
    ::close(fd);
    return refuse(str("corrupt: truncated: ", st.st_size, " bytes, shorter than the ", kFixedHeader,
                      "-byte header"));
  }
  TokenCache c;
  const size_t map_size = static_cast<size_t>(st.st_size);
  void* map = ::mmap(nullptr, map_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return refuse(str("cannot mmap: ", strerror(errno)));
  c.parts_.emplace_back();
  c.parts_[0].map = map;  // unmapped by ~TokenCache on every path from here
  c.parts_[0].map_size = map_size;

  const unsigned char* base = static_cast<const unsigned char*>(map);
  Header h;
  std::memcpy(&h, base, sizeof h);
  if (std::memcmp(h.magic, kMagic, 8) != 0)
    return refuse("corrupt: bad magic at offset 0 (not a hippo token file, which begins HIPPOTOK)");
  if (h.version != kVersion) return refuse(str("stale: format version ", h.version, " at offset 8"));
  if (h.width != 2 && h.width != 4) return refuse(str("corrupt: width ", h.width, " at offset 12"));
  if (h.id_len > kMaxIdLen || data_offset(h.id_len) > map_size)
    return refuse(str("corrupt: bad tokenizer id length ", h.id_len, " at offset 20 (or the file is "
                      "truncated at ", map_size, " bytes)"));
  const std::string_view id(reinterpret_cast<const char*>(base + kFixedHeader), h.id_len);
  if (header_hash(h, id) != h.header_hash)
    return refuse("corrupt: header checksum mismatch (bytes 0..55 and the tokenizer id do not match "
                  "the checksum at offset 56)");
  const size_t offset = data_offset(h.id_len);
  if (h.token_count > (map_size - offset) / h.width ||
      offset + h.token_count * h.width != map_size)
    return refuse(str("corrupt: ", map_size < offset + h.token_count * h.width ? "truncated: " : "",
                      map_size, " bytes, but the header says ", h.token_count, " tokens (offset 40) of ",
                      h.width, " bytes after offset ", offset, ", i.e. ", offset + h.token_count * h.width,
                      " bytes"));
  if (check_ids && fnv1a64(base + offset, h.token_count * h.width) != h.payload_hash)
    return refuse(str("corrupt: token checksum mismatch: the ids from offset ", offset,
                      " do not match the checksum at offset 48"));
  if (stored) *stored = TokenCacheKey{std::string(id), h.source_hash, h.source_bytes};

  c.data_ = base + offset;
  c.parts_[0].data = c.data_;
  c.parts_[0].count = h.token_count;
  c.parts_[0].payload_hash = h.payload_hash;
  c.parts_[0].path = path;
  c.parts_[0].verified = check_ids;
  c.count_ = h.token_count;
  c.width_ = static_cast<int>(h.width);
  c.vocab_size_ = static_cast<int32_t>(h.vocab_size);
  if (why) why->clear();
  return c;
}

TokenCache::TokenCache(TokenCache&& o) noexcept { *this = std::move(o); }

TokenCache& TokenCache::operator=(TokenCache&& o) noexcept {
  if (this != &o) {
    release();
    parts_ = std::exchange(o.parts_, {});
    data_ = std::exchange(o.data_, nullptr);
    count_ = std::exchange(o.count_, 0);
    width_ = std::exchange(o.width_, 0);
    vocab_size_ = std::exchange(o.vocab_size_, 0);
  }
  return *this;
}

TokenCache::~TokenCache() { release(); }

void TokenCache::release() {
  for (const Part& p : parts_) ::munmap(p.map, p.map_size);
  parts_.clear();
}

void TokenCache::read(size_t begin, size_t n, int32_t* out) const {
  HIPPO_CHECK(begin <= count_ && n <= count_ - begin, "token cache: range [", begin, ", ",
              begin + n, ") is outside [0, ", count_, ")");
  if (parts_.size() <= 1) {
    for (size_t i = 0; i < n; ++i) out[i] = (*this)[begin + i];
    return;
  }
  while (n > 0) {  // part by part
    const Part& p = *(std::upper_bound(parts_.begin(), parts_.end(), begin,
                                       [](size_t i, const Part& q) { return i < q.first; }) - 1);
    const size_t k = std::min(n, p.first + p.count - begin);
    for (size_t i = 0; i < k; ++i) {
      const size_t j = begin - p.first + i;
      out[i] = width_ == 2 ? static_cast<const uint16_t*>(p.data)[j]
                           : static_cast<int32_t>(static_cast<const uint32_t*>(p.data)[j]);
    }
    begin += k;
    out += k;
    n -= k;
  }
}

void TokenCache::verify(size_t begin, size_t end) const {
  for (const Part& p : parts_) {
    if (p.verified || p.first >= end || p.first + p.count <= begin) continue;
    HIPPO_CHECK(fnv1a64(p.data, p.count * static_cast<size_t>(width_)) == p.payload_hash,
                "token shard ", p.path, ": corrupt: token checksum mismatch: the ids from offset ",
                static_cast<const unsigned char*>(p.data) - static_cast<const unsigned char*>(p.map),
                " do not match the checksum at offset 48");
    p.verified = true;
  }
}

uint64_t TokenCache::content_hash() const {
  if (parts_.size() == 1) return parts_[0].payload_hash;
  uint64_t h = kFnvOffset;
  for (const Part& p : parts_) h = fnv1a64(&p.payload_hash, sizeof p.payload_hash, h);
  return h;
}

int32_t TokenCache::at_part(size_t i) const {
  int32_t v;
  read(i, 1, &v);
  return v;
}

std::vector<int32_t> TokenCache::to_vector() const {
  std::vector<int32_t> v(count_);
  read(0, count_, v.data());
  return v;
}

TokenCache load_or_build_token_cache(const std::string& path, const TokenCacheKey& key,
                                     int32_t vocab_size,
                                     const std::function<std::vector<int32_t>()>& make,
                                     std::string* rebuilt_because) {
  std::string why;
  if (auto c = TokenCache::open(path, key, &why)) {
    if (rebuilt_because) rebuilt_because->clear();
    return std::move(*c);
  }
  if (rebuilt_because) *rebuilt_because = why;
  write_token_cache(path, key, vocab_size, make());
  std::string why2;
  auto c = TokenCache::open(path, key, &why2);
  HIPPO_CHECK(c.has_value(), "token cache ", path, ": cannot read back the cache just written (",
              why2, ")");
  return std::move(*c);
}

}  // namespace hippo
