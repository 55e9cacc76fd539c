// Shared by the libFuzzer targets (scripts/fuzz.sh): the tiny model the file-format targets
// load into, writing an input to a scratch file (the loaders take paths), and the seed mode.
//
// Seed mode: with HIPPO_FUZZ_SEEDS=<dir> in the environment, a target writes well-formed inputs
// made by the real writers (save_state, save_checkpoint, ...) into <dir> and exits, so that
// the seed corpus always matches the current formats.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "models/config.h"

namespace hippo::fuzz {

// Small enough that a whole checkpoint is a few KB (libFuzzer mutates every byte), with every
// kind of layer state: H3 (shift + diagonal, two heads), attention (KV cache), S4D.
inline ModelConfig tiny_config() {
  return ModelConfig::from_json({{"vocab_size", 11},
                                 {"d_model", 4},
                                 {"n_layer", 3},
                                 {"d_state", 2},
                                 {"head_dim", 2},
                                 {"attn_heads", 2},
                                 {"layers", {"h3", "attention", "s4d"}}},
                                "fuzz config");
}

// A per-process scratch file holding `data` (the loaders under test read files).
inline const std::string& write_scratch(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir && *dir ? dir : "/tmp") + "/hippo_fuzz_" + std::to_string(::getpid()) +
           ".bin";
  }();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();  // the harness itself is broken, not the code under test
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// The seed directory when in seed mode, else empty.
inline std::string seed_dir() {
  const char* d = std::getenv("HIPPO_FUZZ_SEEDS");
  return d ? std::string(d) : std::string();
}

inline void write_seed(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream(dir + "/seed_" + name, std::ios::binary) << bytes;
}

inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace hippo::fuzz
