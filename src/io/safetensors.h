// safetensors: 8-byte little-endian header length, a JSON header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the raw data. Every field of the header is validated against the file before use.
#pragma once
#include <map>
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

struct NamedTensor {
  std::string name;
  const Tensor* tensor;
};
// Written atomically: a temporary file in the same folder, fsync, then rename over `path`.
void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Writes bytes to path atomically (temporary file, fsync, rename, fsync of the folder).
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace hippo
