// Batches of next-token windows from a token stream (a corpus split), for language modelling.
#pragma once
#include <cstdint>

#include "data/batch.h"
#include "data/token_cache.h"

namespace hippo {

// B windows of L+1 tokens at random starts; window start positions are a function of
// (seed, index) only, so training is reproducible and resumable.
void lm_random_batch(const TokenCache& tokens, uint64_t seed, int64_t index, int B, int L, Batch& out);

// Number of non-overlapping evaluation windows of L+1 tokens (sharing one token at the
// boundary, so every token after the first is predicted exactly once).
int64_t lm_eval_windows(const TokenCache& tokens, int L);
// Windows [first, first + B) of that sequence; the last window may be shorter, padded with
// ignored targets (-1).
void lm_eval_batch(const TokenCache& tokens, int L, int64_t first, int B, Batch& out);

}  // namespace hippo
