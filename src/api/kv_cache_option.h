// The KV cache dtype option of the public API (LoadOptions::kv_cache, --kv-cache): "fp32",
// "bf16", "q8" (int8 rows with a scale each, kernels/kv_q8.h; never chosen by auto), or
// "auto" = bf16 for models whose weights are stored bf16 or q8 (the cache then costs what it
// costs next to the weights, as llama.cpp's f16 default does), fp32 for fp32 weights (so an
// fp32 model's generation stays the exact reference).
#pragma once
#include <string>

#include "core/error.h"
#include "models/lm.h"

namespace hippo::api {

inline KvCacheDType resolve_kv_cache(const std::string& option, const LanguageModel& model) {
  if (option == "fp32") return KvCacheDType::F32;
  if (option == "bf16") return KvCacheDType::BF16;
  if (option == "q8") return KvCacheDType::Q8;
  HIPPO_CHECK(option == "auto" || option.empty(),
              "kv_cache must be \"auto\", \"fp32\", \"bf16\" or \"q8\", not \"", option, "\"");
  for (const ParamRef& p : model.params())
    if (p.param->has_stored() && p.param->stored.dtype != DType::F32) return KvCacheDType::BF16;
  return KvCacheDType::F32;
}

}  // namespace hippo::api
