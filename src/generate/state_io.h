// Saving, loading and forking the recurrent state of a whole model (ModelState), so that the
// state of a prefix can be computed once and continued several ways.
//
// File format: safetensors with, per layer i, "layers.<i>.shift" (B, d, N) and
// "layers.<i>.diag" (B, p, p, H, M, 2) for H3, "layers.<i>.x" (B, d, M, 2) for S4D, and
// "layers.<i>.k" / "layers.<i>.v" (B, heads, position, head_dim) for attention; metadata
// "format" = "hippo-state-v1", "config" (the model config JSON), "config_hash",
// "weights_fingerprint", "position", "batch"; optionally "logits" (B, padded_vocab).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/lm.h"

namespace hippo {

// An independent copy of `s`.
ModelState clone_state(const ModelState& s);

// Each sequence repeated `copies` times: sequence b * copies + j of the result is a copy of
// sequence b of `s` (e.g. one prompt's state forked into a batch of continuations).
ModelState repeat_state(const ModelState& s, int copies);

// Makes room in every KV cache for `total_tokens` tokens per sequence, so that steps up to
// that length allocate nothing.
void reserve_state(const LanguageModel& model, ModelState& s, int64_t total_tokens);

// `logits` (batch, padded_vocab), optional: the logits that follow the state (what prefill or
// the last step returned), stored as "logits" so that generation can resume from the file alone.
void save_state(const std::string& path, const LanguageModel& model, const ModelState& s,
                const float* logits = nullptr);

// Throws hippo::Error naming the file and what differs when the state was made for another
// model config, other weights, or is malformed. With `logits`, also reads the stored logits
// (an error if the file has none).
ModelState load_state(const std::string& path, const LanguageModel& model,
                      std::vector<float>* logits = nullptr);

// Fingerprints identifying a model for its states: the config fields that change the maths
// (not dropout or the init scheme), and a sample of every parameter's values.
uint64_t config_hash(const ModelConfig& cfg);
uint64_t weights_fingerprint(const LanguageModel& model);

}  // namespace hippo
