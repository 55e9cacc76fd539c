// Whole-sequence forward from Python and other callers that want every position's logits
// (hippo::Session keeps only the last position's).
//
//   std::vector<float> lg = hippo::forward_logits(*model, ids, batch, length);
//   // lg[(b * length + t) * vocab_size + v]: logit of token v after ids[b, 0..t]
//
// Runs in convolution mode (FlashConv) from a fresh state, like Session::prefill of each
// sequence, with its own scratch: const on the Model, so any number of threads may call it
// at once (and alongside Sessions of the same model).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "hippo/hippo.hpp"

namespace hippo {

// tokens: (batch, length) row-major; logits: (batch, length, vocab_size) row-major, written
// in full. Errors: batch or length < 1, a size mismatch, an id outside the vocabulary, a
// length beyond a learned-positions model's max_position.
void forward_logits(const Model& model, std::span<const int32_t> tokens, int batch, int length,
                    std::span<float> logits);
std::vector<float> forward_logits(const Model& model, std::span<const int32_t> tokens, int batch,
                                  int length);

}  // namespace hippo
