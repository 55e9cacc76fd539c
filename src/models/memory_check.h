// Memory a model will take, estimated from its config before anything is allocated, and a
// refusal (naming the estimate and what the machine has) when it cannot fit. A config that
// claims a huge width must fail in milliseconds, not after a minute of page faults.
#pragma once
#include <cstdint>
#include <string>

#include "models/config.h"

namespace hippo {

struct ModelMemory {
  uint64_t params = 0;       // number of parameters (ModelConfig::num_params)
  uint64_t ssm_buffers = 0;  // bytes the SSM kernels allocate at construction (discretised A, B, C)
};
ModelMemory estimate_model_memory(const ModelConfig& cfg);

// What the model will be used for, which sets the bytes counted per parameter.
enum class ModelUse {
  Any,       // 2: bf16 weights, the least any use keeps in memory (LanguageModel's constructor)
  Fp32,      // 4: fp32 weights (load_model)
  Training,  // 4 + 12: fp32 weights, gradients and AdamW's two moments (LanguageModel::init);
             // activations come on top and depend on batch and sequence length
};

// Memory the system can give without swapping: MemAvailable from /proc/meminfo, else the
// physical memory (sysconf); 0 when neither is known.
uint64_t available_memory_bytes();

// Throws hippo::Error when the estimate for `use` exceeds `available` bytes: "<source>: model
// needs ~X GiB for parameters (+Y GiB training state), this machine has Z GiB available".
// The overload without `available` asks the system; a system that does not say passes.
void check_model_memory(const ModelConfig& cfg, ModelUse use, const std::string& source,
                        uint64_t available);
void check_model_memory(const ModelConfig& cfg, ModelUse use, const std::string& source);

}  // namespace hippo
