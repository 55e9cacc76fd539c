// q8 weights for inference (core/weight.h DType::Q8): the linear layers' weights and the token
// embedding (also the tied head) as int8 in blocks of 32 with one scale per block (a bf16 value,
// quantize_q8_weights), stored fp32 in files and as bf16 in the Rows4 copy: about 1.06 bytes
// per weight in decoding (1.125 in files) instead of bf16's 2. SSM parameters, norms, biases and position
// embeddings stay fp32 (Param::accepts_stored says which is which), as does any weight whose
// rows are not a multiple of 32 long.
//
// File layout (`hippo convert --dtype q8`, docs/checkpoints.md): each q8 weight NAME is two
// safetensors tensors, NAME (I8, the weight's shape) and NAME.q8_scale (F32, (rows, cols / 32));
// __metadata__ holds the config and "weights": "q8". models/load.h maps them without copying.
#pragma once
#include <map>
#include <optional>
#include <string>

#include "models/lm.h"

namespace hippo {

// Suffix of a q8 weight's scale tensor in a file.
inline constexpr const char* kQ8ScaleSuffix = ".q8_scale";

// Whether a parameter becomes q8: a linear/embedding weight whose rows are whole blocks.
bool q8_capable(const Param& p);

// Replaces every q8-capable parameter's value by its q8 quantization made back into fp32 (the
// fp32 twin of a q8 model, for comparisons: same weights, fp32 kernels).
void round_weights_to_q8(LanguageModel& model);

// The layout batch-1 decoding reads fastest on this CPU at active_isa() (core/weight.h
// Q8Layout): Rows4 where the AVX512-VNNI kernel runs (one stream per four rows instead of four),
// Rows elsewhere (the other kernels read Rows4 only through a copy).
Q8Layout q8_decode_layout();

// Replaces every q8-capable fp32 parameter by a q8 copy (Param::stored, in `layout`, default
// q8_decode_layout(), Rows4 with bf16 scales; all copies in one huge-page region) and frees its fp32 storage. The model
// can then only be run (no init/backward/save).
void convert_weights_to_q8(LanguageModel& model, std::optional<Q8Layout> layout = {});

// Rewrites every q8 weight that is not in `layout` into one huge-page region in that layout (a
// q8 file is mapped in the Rows layout; Rows4 is a copy, no longer the file's pages), in Rows4
// with bf16 scales for each weight whose scales are all bf16 values (files written before
// session 14 keep fp32 ones). Bits of every result are unchanged (tests/q8_layout_test.cpp,
// q8_weights_test.cpp).
void relayout_q8_weights(LanguageModel& model, Q8Layout layout);

// Writes the model in the q8 layout above (atomically). Needs fp32 weights. `metadata` is added
// to the file's __metadata__ (e.g. an embedded tokenizer); format, config and weights are set.
void save_weights_q8(const std::string& path, const LanguageModel& model,
                     std::map<std::string, std::string> metadata = {});

}  // namespace hippo
