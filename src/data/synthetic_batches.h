// Batches and evaluation for the synthetic tasks: epochs over the training set in an order
// that is a function of (seed, epoch) only, so any step's batch can be rebuilt on resume.
#pragma once
#include <cstdint>

#include "data/batch.h"
#include "data/synthetic.h"

namespace hippo {

// Batch `index` (0-based, counting every micro-batch) of size B. Targets are the next tokens;
// for a task scored on its answers only (mqar) the others are -1 (not counted).
void synthetic_batch(const SynthDataset& d, uint64_t seed, int64_t index, int B, Batch& out);

// The whole dataset (or its first `limit` sequences) as one batch, for evaluation.
void synthetic_eval_batch(const SynthDataset& d, Batch& out);

}  // namespace hippo
