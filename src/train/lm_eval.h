// Perplexity and bits per byte of a model on a token stream.
#pragma once
#include <functional>

#include "data/token_cache.h"
#include "data/tokenizer.h"
#include "models/lm.h"
#include "train/trainer.h"

namespace hippo {

// Bytes of text each token id stands for (0 for end-of-text), for bits per byte.
std::vector<int32_t> token_byte_lengths(const Tokenizer& tok);

// metrics: "loss" (nats per token), "ppl", "bpb" (bits per byte, when byte_lengths is given),
// "tokens". Evaluates windows of L tokens, B at a time, at most max_tokens (0: all);
// `progress(done, total)` is called after each batch.
// Bits per byte by position in the sequence: bucket k holds the predictions made with
// 2^k .. 2^(k+1)-1 tokens of context (position = tokens before the predicted one).
struct PositionBucket {
  int64_t first = 0, last = 0;  // positions, inclusive
  double nats = 0;
  int64_t tokens = 0, bytes = 0;
};

// Each document of the token stream as one sequence of its full length, through the chunked
// path (LanguageModel::score, memory set by the chunk, not the document). A document runs from
// the end-of-text token before it (or the stream's start) to its own end-of-text (or the
// stream's end): consecutive documents share that token, so every token after the first is
// predicted exactly once, as with windows. Same metrics as evaluate_lm; progress counts
// documents. by_position, optional: filled with the buckets above.
EvalResult evaluate_lm_documents(const LanguageModel& model, const TokenCache& tokens, int32_t eot,
                                 const std::vector<int32_t>* byte_lengths, int64_t max_tokens = 0,
                                 const std::function<void(int64_t, int64_t)>& progress = nullptr,
                                 std::vector<PositionBucket>* by_position = nullptr);

EvalResult evaluate_lm(LanguageModel& model, const TokenCache& tokens, int L, int B,
                       const std::vector<int32_t>* byte_lengths, int64_t max_tokens = 0,
                       const std::function<void(int64_t, int64_t)>& progress = nullptr);

}  // namespace hippo
