#include "data/token_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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
  HIPPO_CHECK(vocab_size > 0, "token cache ", path, ": vocab_size ", vocab_size, " must be > 0");
  HIPPO_CHECK(key.tokenizer_id.size() <= kMaxIdLen, "token cache ", path,
              ": tokenizer id longer than ", kMaxIdLen, " bytes");
  const uint32_t width = vocab_size <= 65536 ? 2 : 4;
  const size_t offset = data_offset(static_cast<uint32_t>(key.tokenizer_id.size()));
  std::string bytes(offset + tokens.size() * width, '\0');
  unsigned char* payload = reinterpret_cast<unsigned char*>(bytes.data()) + offset;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t t = tokens[i];
    HIPPO_CHECK(t >= 0 && t < vocab_size, "token cache ", path, ": token ", i, " = ", t,
                " is outside [0, ", vocab_size, ")");
    if (width == 2) {
      const uint16_t v = static_cast<uint16_t>(t);
      std::memcpy(payload + 2 * i, &v, 2);
    } else {
      const uint32_t v = static_cast<uint32_t>(t);
      std::memcpy(payload + 4 * i, &v, 4);
    }
  }
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = kVersion;
  h.width = width;
  h.vocab_size = static_cast<uint32_t>(vocab_size);
  h.id_len = static_cast<uint32_t>(key.tokenizer_id.size());
  h.source_hash = key.source_hash;
  h.source_bytes = key.source_bytes;
  h.token_count = tokens.size();
  h.payload_hash = fnv1a64(payload, tokens.size() * width);
  h.header_hash = header_hash(h, key.tokenizer_id);
  std::memcpy(bytes.data(), &h, sizeof h);
  std::memcpy(bytes.data() + kFixedHeader, key.tokenizer_id.data(), key.tokenizer_id.size());
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;  // std::filesystem's own exception text would reach the user otherwise
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
    std::filesystem::create_directories(parent, ec);
  HIPPO_CHECK(!ec, "token cache ", path, ": cannot create the folder ", parent.string(), ": ",
              ec.message());
  write_file_atomic(path, bytes);
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

std::optional<TokenCache> TokenCache::open_sound(const std::string& path, std::string* why,
                                                 TokenCacheKey* stored) {
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
  c.map_size_ = static_cast<size_t>(st.st_size);
  void* map = ::mmap(nullptr, c.map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return refuse(str("cannot mmap: ", strerror(errno)));
  c.map_ = map;  // unmapped by ~TokenCache on every path from here

  const unsigned char* base = static_cast<const unsigned char*>(map);
  Header h;
  std::memcpy(&h, base, sizeof h);
  if (std::memcmp(h.magic, kMagic, 8) != 0)
    return refuse("corrupt: bad magic at offset 0 (not a hippo token file, which begins HIPPOTOK)");
  if (h.version != kVersion) return refuse(str("stale: format version ", h.version, " at offset 8"));
  if (h.width != 2 && h.width != 4) return refuse(str("corrupt: width ", h.width, " at offset 12"));
  if (h.id_len > kMaxIdLen || data_offset(h.id_len) > c.map_size_)
    return refuse(str("corrupt: bad tokenizer id length ", h.id_len, " at offset 20 (or the file is "
                      "truncated at ", c.map_size_, " bytes)"));
  const std::string_view id(reinterpret_cast<const char*>(base + kFixedHeader), h.id_len);
  if (header_hash(h, id) != h.header_hash)
    return refuse("corrupt: header checksum mismatch (bytes 0..55 and the tokenizer id do not match "
                  "the checksum at offset 56)");
  const size_t offset = data_offset(h.id_len);
  if (h.token_count > (c.map_size_ - offset) / h.width ||
      offset + h.token_count * h.width != c.map_size_)
    return refuse(str("corrupt: ", c.map_size_ < offset + h.token_count * h.width ? "truncated: " : "",
                      c.map_size_, " bytes, but the header says ", h.token_count, " tokens (offset 40) of ",
                      h.width, " bytes after offset ", offset, ", i.e. ", offset + h.token_count * h.width,
                      " bytes"));
  if (fnv1a64(base + offset, h.token_count * h.width) != h.payload_hash)
    return refuse(str("corrupt: token checksum mismatch: the ids from offset ", offset,
                      " do not match the checksum at offset 48"));
  if (stored) *stored = TokenCacheKey{std::string(id), h.source_hash, h.source_bytes};

  c.data_ = base + offset;
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
    map_ = std::exchange(o.map_, nullptr);
    map_size_ = std::exchange(o.map_size_, 0);
    data_ = std::exchange(o.data_, nullptr);
    count_ = std::exchange(o.count_, 0);
    width_ = std::exchange(o.width_, 0);
    vocab_size_ = std::exchange(o.vocab_size_, 0);
  }
  return *this;
}

TokenCache::~TokenCache() { release(); }

void TokenCache::release() {
  if (map_) ::munmap(map_, map_size_);
  map_ = nullptr;
}

void TokenCache::read(size_t begin, size_t n, int32_t* out) const {
  HIPPO_CHECK(begin <= count_ && n <= count_ - begin, "token cache: range [", begin, ", ",
              begin + n, ") is outside [0, ", count_, ")");
  for (size_t i = 0; i < n; ++i) out[i] = (*this)[begin + i];
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
