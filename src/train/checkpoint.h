// Training checkpoints: one safetensors file holding the weights (official names), the AdamW
// moments ("optim.m.<name>", "optim.v.<name>") and, in its metadata, the model config, the
// step, the optimizer settings and the run's settings ("run", see check_resume_compatible).
// Written atomically, so an interrupted save leaves the previous checkpoint intact.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "models/lm.h"
#include "train/adamw.h"

namespace hippo {

void save_checkpoint(const std::string& path, const LanguageModel& model, const AdamW* opt,
                     const std::map<std::string, std::string>& extra_metadata = {});

// Weights only (for inference and `hippo eval`): same format without the optimizer state.
// Model files a user runs should carry their tokenizer: put it in extra_metadata with
// embed_tokenizer (data/tokenizer.h), as `hippo train` does.
void save_weights(const std::string& path, const LanguageModel& model);

// Loads weights into `model` (names and shapes must match exactly; see models/load.h, which
// also reads the config) and, if `opt` is given, the optimizer moments and step. Reads tensor
// by tensor. Returns the metadata.
std::map<std::string, std::string> load_checkpoint(const std::string& path, LanguageModel& model,
                                                   AdamW* opt);

// Upper bound of the file size save_checkpoint writes for `model` (with the optimizer moments
// or without) and `extra_metadata` (an embedded tokenizer is ~1.5 MB), for the free-space
// check before training starts.
uint64_t checkpoint_bytes(const LanguageModel& model, bool with_optimizer,
                          const std::map<std::string, std::string>& extra_metadata = {});

// The header metadata of a safetensors file (reads the header only).
std::map<std::string, std::string> read_metadata(const std::string& path);

// __metadata__.optim.step: a whole decimal integer in [0, 2^63); anything else ("12junk",
// "-1", " 12", "") throws naming the file.
int64_t parse_checkpoint_step(const std::string& text, const std::string& path);

// Metadata key of the run settings: a JSON object of strings (seed, batch size, data, ...).
inline constexpr const char* kRunSettingsKey = "run";

// Refuses to resume from the checkpoint at `path` (metadata `meta`) with another model config
// or other run settings: every config field and every setting stored in the checkpoint must
// equal this run's; the message names each field that differs, with both values. Settings
// this run has but the checkpoint lacks (written by an older hippo) are not compared.
void check_resume_compatible(const std::string& path, const std::map<std::string, std::string>& meta,
                             const ModelConfig& config,
                             const std::map<std::string, std::string>& run_settings);

}  // namespace hippo
