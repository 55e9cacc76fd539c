#include "io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace hippo {

using nlohmann::json;

const Tensor& SafeTensors::get(const std::string& name, const std::string& file) const {
  auto it = tensors.find(name);
  HIPPO_CHECK(it != tensors.end(), file, ": missing tensor '", name, "'");
  return it->second;
}

static float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
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
  return 0;
}

SafeTensors parse_safetensors(const unsigned char* bytes, size_t size, const std::string& file) {
  HIPPO_CHECK(size >= 8, file, ": too short for a safetensors file (", size, " bytes)");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | bytes[i];
  HIPPO_CHECK(hlen <= 100u << 20, file, ": header length ", hlen, " is over the 100 MiB limit");
  HIPPO_CHECK(hlen <= size - 8, file, ": header length ", hlen, " runs past the end of the file (",
              size, " bytes)");
  json header;
  try {
    header = json::parse(bytes + 8, bytes + 8 + hlen);
  } catch (const json::exception& e) {
    fail(file, ": header is not valid JSON: ", e.what());
  }
  HIPPO_CHECK(header.is_object(), file, ": header is not a JSON object");
  const unsigned char* data = bytes + 8 + hlen;
  const uint64_t data_size = size - 8 - hlen;

  SafeTensors st;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      HIPPO_CHECK(entry.is_object(), file, ": __metadata__ is not an object");
      for (auto& [k, v] : entry.items()) {
        HIPPO_CHECK(v.is_string(), file, ": __metadata__.", k, " is not a string");
        st.metadata[k] = v.get<std::string>();
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
    std::string dt = entry["dtype"];
    int esize = dtype_size(dt);
    HIPPO_CHECK(esize != 0 && dt != "I32" && dt != "I64", where, ": unsupported dtype ", dt);
    Shape shape;
    uint64_t numel = 1;
    for (auto& d : entry["shape"]) {
      HIPPO_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), where,
                  ": shape entries must be non-negative integers");
      uint64_t v = d.get<uint64_t>();
      HIPPO_CHECK(v < (1ull << 40) && (v == 0 || numel <= (1ull << 40) / v), where,
                  ": shape is too large");
      numel *= v;
      shape.push_back(static_cast<int64_t>(v));
    }
    auto& off = entry["data_offsets"];
    HIPPO_CHECK(off[0].is_number_unsigned() && off[1].is_number_unsigned(), where,
                ": data_offsets must be non-negative integers");
    uint64_t b = off[0], e = off[1];
    HIPPO_CHECK(b <= e && e <= data_size, where, ": data_offsets [", b, ", ", e,
                "] out of range (data section is ", data_size, " bytes)");
    HIPPO_CHECK(e - b == numel * esize, where, ": data_offsets cover ", e - b,
                " bytes but dtype ", dt, " and shape ", shape_str(shape), " need ", numel * esize);
    ranges.push_back({b, e});
    Tensor t = Tensor::zeros(shape);
    const unsigned char* p = data + b;
    float* out = t.data();
    for (uint64_t i = 0; i < numel; ++i) {
      if (dt == "F32") {
        std::memcpy(&out[i], p + 4 * i, 4);
      } else if (dt == "F64") {
        double v;
        std::memcpy(&v, p + 8 * i, 8);
        out[i] = static_cast<float>(v);
      } else {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = dt == "BF16" ? bf16_to_f32(h) : f16_to_f32(h);
      }
    }
    st.tensors.emplace(name, std::move(t));
    st.source_dtype[name] = dt;
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    HIPPO_CHECK(ranges[i].first >= ranges[i - 1].second || ranges[i].first == ranges[i].second,
                file, ": tensors overlap in the data section at byte ", ranges[i].first);
  return st;
}

SafeTensors load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HIPPO_CHECK(in.good(), path, ": cannot open file");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  return parse_safetensors(bytes.data(), bytes.size(), path);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  namespace fs = std::filesystem;
  fs::path target(path);
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
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t off = 0;
  for (auto& nt : tensors) {
    HIPPO_CHECK(nt.tensor->contiguous(), path, ": tensor '", nt.name, "' is not contiguous");
    uint64_t n = static_cast<uint64_t>(nt.tensor->numel()) * 4;
    header[nt.name] = {{"dtype", "F32"}, {"shape", nt.tensor->shape()}, {"data_offsets", {off, off + n}}};
    off += n;
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8) h += ' ';  // keeps the data section 8-byte aligned
  std::string bytes(8, '\0');
  uint64_t hl = h.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((hl >> (8 * i)) & 0xff);
  bytes += h;
  bytes.reserve(bytes.size() + off);
  for (auto& nt : tensors)
    bytes.append(reinterpret_cast<const char*>(nt.tensor->data()), nt.tensor->numel() * 4);
  write_file_atomic(path, bytes);
}

}  // namespace hippo
