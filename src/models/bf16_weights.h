// bf16 weights for inference: the linear layers' weights and the token embedding (which is also
// the tied head) in bf16 halve the bytes a decoding step reads. SSM parameters, norms, biases
// and position embeddings stay fp32 (Param::accepts_stored says which is which).
#pragma once
#include <string>

#include "models/lm.h"

namespace hippo {

// Rounds every bf16-capable parameter to the nearest bf16 value (ties to even), kept in fp32:
// the fp32 twin of a bf16 model, for comparisons.
void round_weights_to_bf16(LanguageModel& model);

// Replaces every bf16-capable fp32 parameter by a bf16 copy (Param::bf16, rounded to nearest
// even) and frees its fp32 storage. The model can then only be run (no init/backward/save).
void convert_weights_to_bf16(LanguageModel& model);

// Writes the model like save_weights, with the bf16-capable parameters stored as BF16: the
// layout `hippo convert --dtype bf16` writes. Needs fp32 weights.
void save_weights_bf16(const std::string& path, const LanguageModel& model);

}  // namespace hippo
