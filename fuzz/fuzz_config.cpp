// libFuzzer target for model config files (ModelConfig::load, the path of `--config`): any
// bytes must load or be refused with a hippo::Error. A config that loads must survive
// to_json/from_json unchanged, and, when small, build a model (the layers' own checks must
// agree with validate()). Built and run by scripts/fuzz.sh config.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz/fuzz_common.h"
#include "models/lm.h"

using namespace hippo;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string dir = fuzz::seed_dir();
  if (dir.empty()) return 0;
  const char* seeds[] = {
      R"({"vocab_size": 257, "d_model": 256, "n_layer": 6, "d_state": 64, "mixer": "h3"})",
      R"({"vocab_size": 50257, "d_model": 768, "n_layer": 12, "mixer": "h3", "attn_layer_idx": [1, 6]})",
      R"({"vocab_size": 11, "d_model": 8, "n_layer": 3, "d_state": 4, "head_dim": 2, "attn_heads": 2,
          "rotary_dim": 2, "layers": ["h3", "attention", "s4d"], "discretization": "zoh",
          "ssm_init": "inv", "dropout": 0.1, "init_std": 0.02})",
      R"({"vocab_size": 33, "d_model": 16, "n_layer": 2, "layers": ["attention", "attention"],
          "learned_pos": true, "max_position": 64, "attn_heads": 4})",
      R"({"vocab_size": 9, "d_model": 6, "n_layer": 2, "layers": ["h3_noshift", "h3_nodiag"]})",
  };
  int i = 0;
  for (const char* s : seeds) fuzz::write_seed(dir, "config" + std::to_string(i++), s);
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ModelConfig cfg;
  try {
    cfg = ModelConfig::load(fuzz::write_scratch(data, size));
  } catch (const Error&) {
    return 0;
  }
  // Accepted: the written form must read back as the same config.
  const nlohmann::json j = cfg.to_json();
  const ModelConfig again = ModelConfig::from_json(j, "round trip");  // must not throw
  if (again.to_json() != j) __builtin_trap();
  // Small enough to build: the constructors must accept what validate() accepted.
  const double d = cfg.d_model, layers = cfg.n_layer;
  const double params = static_cast<double>(cfg.padded_vocab()) * d +
                        layers * (16.0 * d * d + 4.0 * d * cfg.d_state) +
                        (cfg.learned_pos ? static_cast<double>(cfg.max_position) * d : 0.0);
  if (params < 2e5) {
    LanguageModel m(cfg);
    m.init(1);
  }
  return 0;
}
