// safetensors: 8-byte little-endian header length, a JSON header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the raw data. Every field of the header is validated against the file before use.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace hippo {

struct SafeTensors {
  std::map<std::string, Tensor> tensors;            // converted to fp32
  std::map<std::string, std::string> metadata;      // "__metadata__"
  std::map<std::string, std::string> source_dtype;  // dtype as stored ("F32", "BF16", ...)

  const Tensor& get(const std::string& name, const std::string& file) const;
  bool has(const std::string& name) const { return tensors.count(name) != 0; }
};

// Throws hippo::Error naming the file and the offending field.
SafeTensors load_safetensors(const std::string& path);
SafeTensors parse_safetensors(const unsigned char* bytes, size_t size, const std::string& name);

// One tensor's header entry; [begin, end) is relative to the data section.
struct TensorEntry {
  std::string dtype;  // F32, F16, BF16, F64, or I8 (q8 weights; never converted to fp32)
  Shape shape;
  uint64_t begin = 0, end = 0;
};

// The validated header of a safetensors file. `data_offset` is where the data section starts
// in the file; every entry lies inside a data section of `data_size` bytes.
struct SafeTensorsHeader {
  std::map<std::string, TensorEntry> tensors;
  std::map<std::string, std::string> metadata;
  uint64_t data_offset = 0, data_size = 0;
};

// Validates the header found in `bytes` (at least the 8-byte length and the JSON) against a
// file of `file_size` bytes: JSON syntax, duplicate keys, dtypes, shape sizes, offsets.
SafeTensorsHeader parse_safetensors_header(const unsigned char* bytes, size_t size,
                                           uint64_t file_size, const std::string& file);

// Converts n elements stored as `dtype` (F32, F16, BF16, F64, little endian) to fp32.
void convert_to_f32(const std::string& dtype, const unsigned char* src, uint64_t n, float* out);

// Reads a safetensors file tensor by tensor without holding the whole file in memory: the
// header is read and validated on construction; read_f32 reads one tensor in bounded chunks.
class SafeTensorsReader {
 public:
  explicit SafeTensorsReader(const std::string& path);
  ~SafeTensorsReader();
  SafeTensorsReader(const SafeTensorsReader&) = delete;
  SafeTensorsReader& operator=(const SafeTensorsReader&) = delete;

  const std::string& path() const { return path_; }
  const SafeTensorsHeader& header() const { return header_; }
  const TensorEntry& entry(const std::string& name) const;  // throws naming the file and tensor
  // Writes the tensor converted to fp32 into out[0 .. numel).
  void read_f32(const std::string& name, float* out) const;

 private:
  std::string path_;
  int fd_ = -1;
  SafeTensorsHeader header_;
};

struct NamedTensor {
  std::string name;
  const Tensor* tensor;
};
// The bytes of a safetensors file holding these tensors (in this order) and metadata.
// Tensors named in `as_bf16` are stored as BF16 (rounded to nearest even), the rest as F32.
std::string safetensors_bytes(const std::vector<NamedTensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {},
                              const std::set<std::string>& as_bf16 = {});
// safetensors_bytes written atomically: a temporary file in the same folder, fsync, then
// rename over `path`.
void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {},
                      const std::set<std::string>& as_bf16 = {});

// A tensor given as raw little-endian bytes of `dtype` (F32, BF16, F16, F64 or I8): how files
// with quantized weights (models/q8_weights.h) are written. data holds numel(shape) elements.
struct RawTensor {
  std::string name;
  std::string dtype;
  Shape shape;
  const void* data;
};
// The bytes of a safetensors file holding these tensors (in this order; each starts 64-byte
// aligned in the file) and metadata.
std::string safetensors_bytes_raw(const std::vector<RawTensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

// Writes bytes to path atomically (temporary file, fsync, rename, fsync of the folder).
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace hippo
