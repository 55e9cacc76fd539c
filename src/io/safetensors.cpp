#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <nlohmann/json.hpp>

#include "core/bf16.h"
#include "core/error.h"
#include "io/strict_json.h"

namespace hippo {

using nlohmann::json;

const Tensor& SafeTensors::get(const std::string& name, const std::string& file) const {
  auto it = tensors.find(name);
  HIPPO_CHECK(it != tensors.end(), file, ": missing tensor '", name, "'");
  return it->second;
}


static float f16_to_f32(uint16_t h) {
  uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0) v = std::ldexp(static_cast<float>(mant), -24);
  else if (exp == 31) v = mant ? NAN : INFINITY;
  else v = std::ldexp(static_cast<float>(mant | 0x400), static_cast<int>(exp) - 25);
  return sign ? -v : v;
}

static int dtype_size(const std::string& dt) {
  if (dt == "F32" || dt == "I32") return 4;
  if (dt == "BF16" || dt == "F16") return 2;
  if (dt == "F64" || dt == "I64") return 8;
  if (dt == "I8") return 1;
  return 0;
}

void convert_to_f32(const std::string& dt, const unsigned char* p, uint64_t n, float* out) {
  if (dt == "F32") {
    std::memcpy(out, p, n * 4);
  } else if (dt == "F64") {
    for (uint64_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, p + 8 * i, 8);
      out[i] = static_cast<float>(v);
    }
  } else if (dt == "BF16") {
    for (uint64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = bf16_to_f32(h);
    }
  } else if (dt == "F16") {
    for (uint64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = f16_to_f32(h);
    }
  } else if (dt == "I8") {
    fail("convert_to_f32: dtype I8 (q8 weights) has no fp32 reading here; q8 files are loaded "
         "memory-mapped (models/load.h)");
  } else {
    fail("convert_to_f32: unsupported dtype ", dt);
  }
}

static uint64_t header_length(const unsigned char* bytes, size_t size, uint64_t file_size,
                              const std::string& file) {
  HIPPO_CHECK(size >= 8 && file_size >= 8, file, ": too short for a safetensors file (", file_size,
              " bytes)");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | bytes[i];
  HIPPO_CHECK(hlen <= 100u << 20, file, ": header length ", hlen, " is over the 100 MiB limit");
  HIPPO_CHECK(hlen <= file_size - 8, file, ": header length ", hlen,
              " runs past the end of the file (", file_size, " bytes)");
  return hlen;
}

SafeTensorsHeader parse_safetensors_header(const unsigned char* bytes, size_t size,
                                           uint64_t file_size, const std::string& file) {
  const uint64_t hlen = header_length(bytes, size, file_size, file);
  HIPPO_CHECK(hlen <= size - 8, file, ": header is incomplete (", size, " of ", 8 + hlen,
              " bytes given)");
  // nlohmann keeps the last of duplicate keys silently; a file that names a tensor twice is
  // ambiguous, so the parser callback refuses it (a stack of key sets, one per open object).
  DuplicateKeyTracker keys;
  json header;
  try {
    header = json::parse(bytes + 8, bytes + 8 + hlen, std::ref(keys));
  } catch (const json::exception& e) {
    fail(file, ": header is not valid JSON: ", e.what());
  }
  HIPPO_CHECK(keys.duplicate().empty(), file, ": header names '", keys.duplicate(),
              "' more than once");
  HIPPO_CHECK(header.is_object(), file, ": header is not a JSON object");

  SafeTensorsHeader h;
  h.data_offset = 8 + hlen;
  h.data_size = file_size - 8 - hlen;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      HIPPO_CHECK(entry.is_object(), file, ": __metadata__ is not an object");
      for (auto& [k, v] : entry.items()) {
        HIPPO_CHECK(v.is_string(), file, ": __metadata__.", k, " is not a string");
        h.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = file + ": tensor '" + name + "'";
    HIPPO_CHECK(entry.is_object(), where, " is not an object");
    HIPPO_CHECK(entry.contains("dtype") && entry["dtype"].is_string(), where, ": missing dtype");
    HIPPO_CHECK(entry.contains("shape") && entry["shape"].is_array(), where, ": missing shape");
    HIPPO_CHECK(entry.contains("data_offsets") && entry["data_offsets"].is_array() &&
                    entry["data_offsets"].size() == 2,
                where, ": missing data_offsets [begin, end]");
    TensorEntry te;
    te.dtype = entry["dtype"].get<std::string>();
    const int esize = dtype_size(te.dtype);
    HIPPO_CHECK(esize != 0 && te.dtype != "I32" && te.dtype != "I64", where, ": unsupported dtype ",
                te.dtype);
    // numel stays below 2^40 at every step, so numel * esize cannot overflow 64 bits.
    uint64_t numel = 1;
    for (auto& d : entry["shape"]) {
      HIPPO_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), where,
                  ": shape entries must be non-negative integers");
      uint64_t v = d.get<uint64_t>();
      HIPPO_CHECK(v < (1ull << 40) && (v == 0 || numel <= (1ull << 40) / v), where,
                  ": shape is too large");
      numel *= v;
      te.shape.push_back(static_cast<int64_t>(v));
    }
    auto& off = entry["data_offsets"];
    HIPPO_CHECK(off[0].is_number_unsigned() && off[1].is_number_unsigned(), where,
                ": data_offsets must be non-negative integers");
    te.begin = off[0].get<uint64_t>();
    te.end = off[1].get<uint64_t>();
    HIPPO_CHECK(te.begin <= te.end && te.end <= h.data_size, where, ": data_offsets [", te.begin,
                ", ", te.end, "] out of range (data section is ", h.data_size, " bytes)");
    HIPPO_CHECK(te.end - te.begin == numel * esize, where, ": data_offsets cover ",
                te.end - te.begin, " bytes but dtype ", te.dtype, " and shape ",
                shape_str(te.shape), " need ", numel * esize);
    ranges.push_back({te.begin, te.end});
    h.tensors.emplace(name, std::move(te));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    HIPPO_CHECK(ranges[i].first >= ranges[i - 1].second || ranges[i].first == ranges[i].second,
                file, ": tensors overlap in the data section at byte ", ranges[i].first);
  return h;
}

SafeTensors parse_safetensors(const unsigned char* bytes, size_t size, const std::string& file) {
  SafeTensorsHeader h = parse_safetensors_header(bytes, size, size, file);
  const unsigned char* data = bytes + h.data_offset;
  SafeTensors st;
  st.metadata = std::move(h.metadata);
  for (auto& [name, te] : h.tensors) {
    Tensor t = Tensor::zeros(te.shape);
    convert_to_f32(te.dtype, data + te.begin, static_cast<uint64_t>(t.numel()), t.data());
    st.tensors.emplace(name, std::move(t));
    st.source_dtype[name] = te.dtype;
  }
  return st;
}

SafeTensors load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HIPPO_CHECK(in.good(), path, ": cannot open file");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  return parse_safetensors(bytes.data(), bytes.size(), path);
}

static void pread_all(int fd, unsigned char* out, uint64_t n, uint64_t offset,
                      const std::string& path) {
  while (n > 0) {
    ssize_t got = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    HIPPO_CHECK(got > 0, path, ": read failed at byte ", offset,
                got < 0 ? std::string(": ") + std::strerror(errno) : std::string(": file is truncated"));
    out += got;
    offset += static_cast<uint64_t>(got);
    n -= static_cast<uint64_t>(got);
  }
}

SafeTensorsReader::SafeTensorsReader(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  HIPPO_CHECK(fd_ >= 0, path, ": cannot open file: ", std::strerror(errno));
  try {
    struct stat sb;
    HIPPO_CHECK(::fstat(fd_, &sb) == 0 && S_ISREG(sb.st_mode), path, ": not a regular file");
    const uint64_t file_size = static_cast<uint64_t>(sb.st_size);
    unsigned char prefix[8] = {};
    if (file_size >= 8) pread_all(fd_, prefix, 8, 0, path);
    const uint64_t hlen = header_length(prefix, file_size >= 8 ? 8 : 0, file_size, path);
    std::vector<unsigned char> bytes(8 + hlen);
    std::memcpy(bytes.data(), prefix, 8);
    pread_all(fd_, bytes.data() + 8, hlen, 8, path);
    header_ = parse_safetensors_header(bytes.data(), bytes.size(), file_size, path);
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

SafeTensorsReader::~SafeTensorsReader() {
  if (fd_ >= 0) ::close(fd_);
}

const TensorEntry& SafeTensorsReader::entry(const std::string& name) const {
  auto it = header_.tensors.find(name);
  HIPPO_CHECK(it != header_.tensors.end(), path_, ": missing tensor '", name, "'");
  return it->second;
}

void SafeTensorsReader::read_f32(const std::string& name, float* out) const {
  const TensorEntry& te = entry(name);
  const uint64_t esize = static_cast<uint64_t>(dtype_size(te.dtype));
  const uint64_t numel = (te.end - te.begin) / esize;
  if (te.dtype == "F32") {  // straight into place, no staging copy
    pread_all(fd_, reinterpret_cast<unsigned char*>(out), numel * 4, header_.data_offset + te.begin,
              path_);
    return;
  }
  // Bounded staging buffer, so loading never holds a second copy of a large tensor.
  const uint64_t chunk = (uint64_t{4} << 20) / esize;
  std::vector<unsigned char> buf(std::min(numel, chunk) * esize);
  for (uint64_t i = 0; i < numel; i += chunk) {
    const uint64_t n = std::min(chunk, numel - i);
    pread_all(fd_, buf.data(), n * esize, header_.data_offset + te.begin + i * esize, path_);
    convert_to_f32(te.dtype, buf.data(), n, out + i);
  }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  namespace fs = std::filesystem;
  fs::path target(path);
  // The rename below would replace whatever is there: never a device (bench/random_model once
  // replaced /dev/null), a FIFO or a folder. Symbolic links are replaced, not followed, as before.
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(target, ec);
  HIPPO_CHECK(!fs::exists(st) || fs::is_regular_file(st) || fs::is_symlink(st), path,
              ": exists and is not a regular file; refusing to replace it");
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // Same folder, so the rename cannot cross file systems.
  std::string tmp = (dir / str(".", target.filename().string(), ".tmp", ::getpid())).string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  HIPPO_CHECK(fd >= 0, path, ": cannot create temporary file ", tmp, ": ", std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail(path, ": write failed: ", std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail(path, ": fsync/close failed: ", std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail(path, ": rename failed: ", std::strerror(err));
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata,
                      const std::set<std::string>& as_bf16) {
  for (auto& nt : tensors)
    HIPPO_CHECK(nt.tensor->contiguous(), path, ": tensor '", nt.name, "' is not contiguous");
  write_file_atomic(path, safetensors_bytes(tensors, metadata, as_bf16));
}

// The 8-byte length and the JSON header, padded with spaces (the format allows it) so the data
// section starts 64-byte aligned: mapped fp32 weights are used in place, and rows that start on
// a cache line halve the lines a vector load touches (the small-rows kernel ran batch-8
// decoding ~15% faster; docs/serving.md "Batched decoding").
static std::string framed_header(const json& header) {
  std::string h = header.dump();
  while ((8 + h.size()) % 64) h += ' ';
  std::string bytes(8, '\0');
  const uint64_t hl = h.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((hl >> (8 * i)) & 0xff);
  return bytes + h;
}

std::string safetensors_bytes(const std::vector<NamedTensor>& tensors,
                              const std::map<std::string, std::string>& metadata,
                              const std::set<std::string>& as_bf16) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t off = 0;
  for (auto& nt : tensors) {
    HIPPO_CHECK(nt.tensor->contiguous(), "safetensors: tensor '", nt.name, "' is not contiguous");
    const bool bf16 = as_bf16.count(nt.name) != 0;
    uint64_t n = static_cast<uint64_t>(nt.tensor->numel()) * (bf16 ? 2 : 4);
    header[nt.name] = {{"dtype", bf16 ? "BF16" : "F32"}, {"shape", nt.tensor->shape()},
                       {"data_offsets", {off, off + n}}};
    // Each tensor starts 4-byte aligned, so F32 tensors can be used in place when mapped.
    off += (n + 3) / 4 * 4;
  }
  // Tensors whose sizes are multiples of 64 bytes (every one of a released shape's) all start
  // aligned after the aligned header.
  std::string bytes = framed_header(header);
  bytes.reserve(bytes.size() + off);
  for (auto& nt : tensors) {
    if (as_bf16.count(nt.name)) {
      for (int64_t i = 0; i < nt.tensor->numel(); ++i) {
        const uint16_t h = f32_to_bf16((*nt.tensor)[i]);
        bytes.push_back(static_cast<char>(h & 0xff));
        bytes.push_back(static_cast<char>(h >> 8));
      }
      while (bytes.size() % 4) bytes.push_back('\0');
    } else {
      bytes.append(reinterpret_cast<const char*>(nt.tensor->data()), nt.tensor->numel() * 4);
    }
  }
  return bytes;
}

std::string safetensors_bytes_raw(const std::vector<RawTensor>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t off = 0;
  std::vector<uint64_t> sizes;
  for (auto& t : tensors) {
    const int es = dtype_size(t.dtype);
    HIPPO_CHECK(es != 0, "safetensors: tensor '", t.name, "' has unsupported dtype ", t.dtype);
    const uint64_t n = static_cast<uint64_t>(shape_numel(t.shape)) * static_cast<uint64_t>(es);
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + n}}};
    sizes.push_back(n);
    off += (n + 63) / 64 * 64;
  }
  // Every tensor also starts 64-byte aligned: mapped, each row of a weight whose rows are
  // 64-byte multiples lies in whole cache lines (a 512-bit load spanning two lines runs at
  // about half speed).
  std::string bytes = framed_header(header);
  bytes.reserve(bytes.size() + off);
  for (size_t k = 0; k < tensors.size(); ++k) {
    bytes.append(static_cast<const char*>(tensors[k].data), sizes[k]);
    while (bytes.size() % 64) bytes.push_back('\0');
  }
  return bytes;
}

}  // namespace hippo
