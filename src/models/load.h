// Loading a model for inference from a hippo safetensors file: weights written by
// save_weights / save_checkpoint, or converted from a released H3 checkpoint by
// `hippo convert`. load_model reads the file tensor by tensor into fp32 parameters (F16, BF16
// and F64 converted; no whole-file copy in memory); load_model_mapped uses the file in place.
#pragma once
#include <map>
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

// Inference loading without a copy of the weights: the file is memory-mapped (io/mapped_file.h;
// the model keeps the mapping alive). F32 tensors are used in place when 4-byte aligned (else
// copied), BF16 weights of the linear layers and the token embedding stay bf16 (Param::bf16,
// read by Linear::forward and the embedding/tied head), other dtypes are converted to fp32.
// Same checks and errors as load_model; the header is validated before anything is used. The
// model can be run but not trained or saved. `metadata`, if given, receives __metadata__.
std::unique_ptr<LanguageModel> load_model_mapped(
    const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

// Every loader also refuses a tensor holding NaN or Inf (naming the file, the tensor and the
// element), and a config that describes more parameters than the file holds (before the model
// is built); load_model refuses a model whose fp32 weights exceed the available memory.

// Throws hippo::Error naming the file and the tensor when x[0, n) holds a NaN or Inf. One
// vectorised pass (core/finite.h); for other loaders of weights (e.g. optimizer moments).
void check_finite(const float* x, int64_t n, const std::string& tensor, const std::string& file);

// Loads the file's weights into an existing model (same rules as load_model).
void load_model_weights(const std::string& path, LanguageModel& model);
class SafeTensorsReader;
void load_model_weights(const SafeTensorsReader& file, LanguageModel& model);

}  // namespace hippo
