// Training checkpoints: one safetensors file holding the weights (official names), the AdamW
// moments ("optim.m.<name>", "optim.v.<name>") and, in its metadata, the model config, the
// step and the optimizer settings. Written atomically, so an interrupted save leaves the
// previous checkpoint intact.
#pragma once
#include <map>
#include <string>

#include "models/lm.h"
#include "train/adamw.h"

namespace hippo {

void save_checkpoint(const std::string& path, const LanguageModel& model, const AdamW* opt,
                     const std::map<std::string, std::string>& extra_metadata = {});

// Weights only (for inference and `hippo eval`): same format without the optimizer state.
void save_weights(const std::string& path, const LanguageModel& model);

// Loads weights into `model` (names and shapes must match exactly; see models/load.h, which
// also reads the config) and, if `opt` is given, the optimizer moments and step. Reads tensor
// by tensor. Returns the metadata.
std::map<std::string, std::string> load_checkpoint(const std::string& path, LanguageModel& model,
                                                   AdamW* opt);

}  // namespace hippo
