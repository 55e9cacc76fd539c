// bf16 weights for inference: the linear layers' weights and the token embedding (which is also
// the tied head) in bf16 halve the bytes a decoding step reads. SSM parameters, norms, biases
// and position embeddings stay fp32 (Param::accepts_stored says which is which).
#pragma once
#include <optional>
#include <string>

#include "models/lm.h"

namespace hippo {

// Rounds every bf16-capable parameter to the nearest bf16 value (ties to even), kept in fp32:
// the fp32 twin of a bf16 model, for comparisons.
void round_weights_to_bf16(LanguageModel& model);

// The order bf16 weights take for inference (core/weight.h Bf16Layout): Rows8 where the AVX-512
// small-rows kernel runs (it reads a group of eight rows as one stream: issue 18, session 13,
// docs/performance.md), else Rows. Weights whose columns are not a multiple of 32, or with
// fewer than 8 rows, stay Rows. Every result is the same bit for bit in either order.
Bf16Layout bf16_decode_layout();

// Replaces every bf16-capable fp32 parameter by a bf16 copy (Param::stored, rounded to nearest
// even) in `layout` (default bf16_decode_layout()), all in one region on huge pages, and frees
// its fp32 storage. The model can then only be run (no init/backward/save).
void convert_weights_to_bf16(LanguageModel& model,
                             std::optional<Bf16Layout> layout = std::nullopt);

// Rewrites every bf16 weight not already in `layout` (memory-mapped ones included) into a copy
// in that order, in one region on huge pages: a bf16 file's weights are copied once at load.
void relayout_bf16_weights(LanguageModel& model, Bf16Layout layout);

// Writes the model like save_weights, with the bf16-capable parameters stored as BF16: the
// layout `hippo convert --dtype bf16` writes. Needs fp32 weights.
void save_weights_bf16(const std::string& path, const LanguageModel& model);

}  // namespace hippo
