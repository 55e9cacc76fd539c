// Loading a model for inference from a hippo safetensors file: weights written by
// save_weights / save_checkpoint, or converted from a released H3 checkpoint by
// `hippo convert`. The file is read tensor by tensor (no whole-file copy in memory); F16, BF16
// and F64 tensors are converted to fp32.
#pragma once
#include <memory>
#include <string>

#include "models/config.h"
#include "models/lm.h"

namespace hippo {

// The model config stored in the file's __metadata__.config (reads the header only).
ModelConfig read_model_config(const std::string& path);

// Builds the model described by the file's config and loads every parameter by official name.
// Returned by pointer because LanguageModel's parameter list points into the object itself.
// Tensors named "optim.*" (optimizer state of a training checkpoint) are ignored; any other
// tensor the model does not have, a missing one or a wrong shape is an Error naming the file
// and the tensor.
std::unique_ptr<LanguageModel> load_model(const std::string& path);

// Loads the file's weights into an existing model (same rules as load_model).
void load_model_weights(const std::string& path, LanguageModel& model);
class SafeTensorsReader;
void load_model_weights(const SafeTensorsReader& file, LanguageModel& model);

}  // namespace hippo
