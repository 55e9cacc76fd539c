// Batches of next-token windows from a token stream (a corpus split), for language modelling.
#pragma once
#include <cstdint>
#include <utility>

#include "data/batch.h"
#include "data/token_cache.h"

namespace hippo {

// B windows of L+1 tokens at random starts; window start positions are a function of
// (seed, index, part, parts) only, so training is reproducible and resumable. The windows lie in
// part `part` of `parts` equal token ranges (lm_part_range): the trainer draws micro-batch j of
// each step from part j, so that with N ranks each rank reads only its 1/N of the corpus while
// every micro-batch is the same whichever rank computes it (docs/scaling.md).
void lm_random_batch(const TokenCache& tokens, uint64_t seed, int64_t index, int B, int L, Batch& out,
                     int part = 0, int parts = 1);

// Tokens [first, second) of part `part` of `parts`: n * part / parts to n * (part + 1) / parts,
// or all n tokens when a part would be too short for a window of L + 1 (then every part is).
std::pair<int64_t, int64_t> lm_part_range(int64_t n, int part, int parts, int L);

// Number of non-overlapping evaluation windows of L+1 tokens (sharing one token at the
// boundary, so every token after the first is predicted exactly once).
int64_t lm_eval_windows(const TokenCache& tokens, int L);
// Windows [first, first + B) of that sequence; the last window may be shorter, padded with
// ignored targets (-1).
void lm_eval_batch(const TokenCache& tokens, int L, int64_t first, int B, Batch& out);

}  // namespace hippo
