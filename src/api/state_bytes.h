// Session state <-> bytes and one decoding step of many states: the engine calls the session
// layer uses (kept in one place so the session code does not depend on how they are done).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "models/lm.h"

namespace hippo::api {

// The state file format of generate/state_io.h, in memory.
std::vector<uint8_t> state_to_bytes(const LanguageModel& lm, const ModelState& st,
                                    const float* logits);
ModelState state_from_bytes(std::span<const uint8_t> bytes, const LanguageModel& lm,
                            std::vector<float>* logits);

// A prompt from a fresh state (convolution mode); returns the logits after its last token.
const float* prefill_state(const LanguageModel& lm, const int32_t* tokens, int L, ModelState& st);

// One step of every state (each at its own position); state i consumes tokens[i] and holds
// the logits that follow in its `logits` buffer.
void step_states(const LanguageModel& lm, const int32_t* tokens, std::span<ModelState* const> states);

}  // namespace hippo::api
