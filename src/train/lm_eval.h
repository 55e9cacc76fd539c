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
EvalResult evaluate_lm(LanguageModel& model, const TokenCache& tokens, int L, int B,
                       const std::vector<int32_t>* byte_lengths, int64_t max_tokens = 0,
                       const std::function<void(int64_t, int64_t)>& progress = nullptr);

}  // namespace hippo
