// Saving, loading and forking the recurrent state of a whole model (ModelState), so that the
// state of a prefix can be computed once and continued several ways.
//
// File format: safetensors (all tensors F32) with, per layer i, "layers.<i>.shift" (B, d, N),
// "layers.<i>.shift_ring" (B, d, N: the shift SSM's last N inputs, newest first),
// "layers.<i>.shift_age" (1: how many of them follow the state given as "shift", at most N; at N
// the ring alone is the state, ssm/shift.h) and "layers.<i>.diag" (B, p, p, H, M, 2) for H3
// (files written before the ring existed have neither of the two; they load, and continue
// from "shift"), "layers.<i>.x" (B, d, M, 2) for S4D, and
// "layers.<i>.k" / "layers.<i>.v" (B, heads, position, head_dim) for attention; metadata
// "format" = "hippo-state-v2", "config" (the model config JSON), "config_hash",
// "weights_fingerprint", "position", "batch", "checksum"; optionally "logits" (B, padded_vocab).
// With attention layers, "kv_cache" = "fp32" | "bf16" | "q8" (the cache's dtype; the tensors
// are F32 either way: a bf16 cache widened exactly, a q8 cache's int8 values as whole numbers
// with their row scales in "layers.<i>.k_scale" / "layers.<i>.v_scale" (B, heads, position)):
// loading into a model whose caches have another dtype is refused (a missing key, from files
// written before it existed, means fp32).
//
// "checksum" (16 hex digits) covers every other metadata entry and every tensor (name, dtype,
// shape and data): h = FNV-1a 64 over "key\0value\0" for the metadata in key order, then per
// tensor in name order FNV-1a over "name\0F32\0d0,d1,...\0" followed by state_data_hash of its
// bytes (seeded with h). Loading refuses a file whose checksum does not match, and the older
// hippo-state-v1 (no checksum: it cannot be verified).
#pragma once
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "io/safetensors.h"
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

// The same file format as bytes in memory (for a session saved elsewhere than a file): the
// same checksum and the same checks on loading; `what` names the bytes in messages.
std::vector<uint8_t> save_state_bytes(const LanguageModel& model, const ModelState& s,
                                      const float* logits = nullptr);
ModelState load_state_bytes(std::span<const uint8_t> bytes, const LanguageModel& model,
                            std::vector<float>* logits, const std::string& what);

// Refuses `out` as the path of a state file to write when it is one of `inputs` or an existing
// file that is not a hippo state file (a model, a prompt: never replaced by a state); `option`
// names the setting in the message. Also removes temporaries left by a killed earlier save.
void check_state_output_path(const std::string& out, const std::string& option,
                             const std::vector<std::string>& inputs);

// Bytes held by a state (SSM states, KV caches at their capacity).
int64_t state_bytes(const ModelState& s);

// The "checksum" metadata value of a state file with this metadata (a "checksum" entry in it
// is ignored) and these F32 tensors.
std::string state_checksum(const std::map<std::string, std::string>& metadata,
                           std::vector<NamedTensor> tensors);

// 64-bit hash of a tensor's bytes used by the state checksum: four lanes of 8-byte words
// (word i to lane i mod 4; lane = rotl(lane ^ word * P2, 31) * P1), a zero-padded last word,
// then the lanes and the length mixed with MurmurHash3's finaliser. Any change of one word
// changes the result; several GB/s.
uint64_t state_data_hash(const void* data, size_t n, uint64_t seed);

// Fingerprints identifying a model for its states: the config fields that change the maths
// (not dropout or the init scheme), and a sample of every parameter's values.
uint64_t config_hash(const ModelConfig& cfg);
uint64_t weights_fingerprint(const LanguageModel& model);

}  // namespace hippo
