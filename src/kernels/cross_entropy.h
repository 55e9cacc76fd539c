// Mean next-token cross-entropy over rows of logits, the language-model loss.
#pragma once
#include <cstdint>

namespace hippo {

// logits: (rows, V); targets: (rows), a target < 0 marks a row to ignore (not counted in the
// mean). Returns mean over counted rows of -log softmax(logits)[target] (0 if none counted).
// dlogits (rows, V), optional (may be null) and may alias logits: the gradient of that mean
// (zero on ignored rows). n_valid / n_correct, optional: how many rows were counted and how
// many of those have argmax (first maximum) equal to the target.
// A target >= V is a hippo::Error naming the id, its row and V.
double cross_entropy(const float* logits, const int32_t* targets, float* dlogits, int64_t rows,
                     int64_t V, int64_t* n_correct = nullptr, int64_t* n_valid = nullptr);

}  // namespace hippo
