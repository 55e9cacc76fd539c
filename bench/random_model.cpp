// Writes a random-weight model of a released H3 hybrid's shape, for memory and speed
// measurements of inference loading (docs/checkpoints.md), and prints its parameter counts.
// Usage: random_model 125m|355m|1.3b|2.7b[:hybrid|transformer|h3] [OUT.safetensors [bf16|q8]]
// Without OUT only the counts are printed (the model is not initialised: no memory touched).
#include <cstdio>
#include <string>

#include "core/error.h"
#include "models/bf16_weights.h"
#include "models/lm.h"
#include "models/q8_weights.h"
#include "train/checkpoint.h"

using namespace hippo;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: random_model 125m|355m|1.3b|2.7b[:hybrid|transformer|h3] "
                         "[OUT.safetensors [bf16|q8]]\n");
    return 2;
  }
  try {
    // SHAPE[:KIND]: the released hybrid's attention layers (default), attention in every layer
    // with learned positions (a Transformer of the same shape), or H3 in every layer.
    const std::string arg = argv[1];
    const std::string shape = arg.substr(0, arg.find(':'));
    const std::string kind = arg.find(':') == std::string::npos ? "hybrid" : arg.substr(arg.find(':') + 1);
    HIPPO_CHECK(kind == "hybrid" || kind == "transformer" || kind == "h3", "unknown kind '", kind,
                "' (expected hybrid, transformer or h3)");
    int d = 0, n_layer = 0, heads = 0;
    std::vector<int> attn;
    if (shape == "125m") d = 768, n_layer = 12, heads = 12, attn = {6};
    else if (shape == "355m") d = 1024, n_layer = 24, heads = 16, attn = {8, 16};
    else if (shape == "1.3b") d = 2048, n_layer = 24, heads = 16, attn = {8, 16};
    else if (shape == "2.7b") d = 2560, n_layer = 32, heads = 20, attn = {8, 16, 24};
    else fail("unknown shape ", shape);
    nlohmann::json layers = nlohmann::json::array();
    for (int i = 0; i < n_layer; ++i)
      layers.push_back(kind == "transformer" ||
                               (kind == "hybrid" && std::find(attn.begin(), attn.end(), i) != attn.end())
                           ? "attention"
                           : "h3");
    nlohmann::json j = {{"vocab_size", 50257}, {"d_model", d},         {"n_layer", n_layer},
                        {"d_state", 64},       {"attn_heads", heads}, {"layers", layers}};
    if (kind == "transformer") {
      j["learned_pos"] = true;
      j["max_position"] = 4096;
    }
    LanguageModel m(ModelConfig::from_json(j, arg));
    int64_t total = 0, capable = 0;
    for (auto& p : m.params()) {
      total += p.param->value.numel();
      if (p.param->accepts_stored) capable += p.param->value.numel();
    }
    std::printf("%s: %lld parameters, %lld of them linear/embedding weights (bf16-capable), "
                "%lld others; fp32 %.3f GB, bf16 file %.3f GB, q8 file %.3f GB\n",
                shape.c_str(), static_cast<long long>(total), static_cast<long long>(capable),
                static_cast<long long>(total - capable), total * 4e-9,
                (capable * 2 + (total - capable) * 4) * 1e-9,
                (capable * 1.125 + (total - capable) * 4) * 1e-9);
    if (argc < 3) return 0;
    m.init(1);
    const std::string dtype = argc > 3 ? argv[3] : "fp32";
    HIPPO_CHECK(dtype == "fp32" || dtype == "bf16" || dtype == "q8", "unknown weight type '", dtype,
                "' (expected bf16 or q8)");
    if (dtype == "bf16")
      save_weights_bf16(argv[2], m);
    else if (dtype == "q8")
      save_weights_q8(argv[2], m);
    else
      save_weights(argv[2], m);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "random_model: %s\n", e.what());
    return 1;
  }
}
