// `hippo generate` as a function: text from a model file for one or many prompts, with forked
// samples and saved/loaded generation states, printed as the command prints it (a single
// sequence streams to stdout as it is made; several are printed at the end; a summary line
// goes to stderr). Programs that want the tokens themselves use hippo::Model and
// hippo::Session (hippo/hippo.hpp); this is the command-line tool's batch driver.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "hippo/error.hpp"

namespace hippo {

struct GenerateOptions {
  std::string model;                      // weights or checkpoint (.safetensors)
  std::vector<std::string> prompts;       // several run as one batch
  std::vector<std::string> prompt_files;  // files whose text is a prompt (pipes allowed)
  int n = 64;                             // tokens to generate per sequence
  int samples = 1;                        // continuations per prompt (the prompt state is forked)
  float temperature = 1.0f;               // 0: greedy
  int top_k = 0;                          // 0: all
  float top_p = 1.0f;
  uint64_t seed = 0;
  int threads = 0;                        // 0: all cores
  std::string tokenizer;                  // "byte" | "gpt2:DIR"; empty: the model file's
  std::string kv_cache = "auto";          // "fp32" | "bf16" | "q8" | "auto" (LoadOptions::kv_cache)
  std::string q8_layout = "auto";         // "rows" | "rows4" | "auto" (LoadOptions::q8_layout)
  std::string bf16_layout = "auto";       // "rows" | "rows8" | "auto" (LoadOptions::bf16_layout)
  std::string save_state, load_state;     // state after the prompt: save to / continue from
  // With bf16 weights: round decoding's activations to bf16 and multiply pairs with
  // VDPBF16PS (faster batched decoding; logits move by ~1e-3 relative). Default: exact fp32.
  bool fast_bf16 = false;
};

// Options out of range, unreadable files and mismatched states are an Error naming them.
void generate(const GenerateOptions& options);

}  // namespace hippo
