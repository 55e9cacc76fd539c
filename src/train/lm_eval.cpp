#include "train/lm_eval.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/lm_batches.h"

namespace hippo {

std::vector<int32_t> token_byte_lengths(const Tokenizer& tok) {
  std::vector<int32_t> len(tok.vocab_size(), 0);
  for (int32_t id = 0; id < tok.vocab_size(); ++id)
    if (id != tok.eot_id()) len[id] = static_cast<int32_t>(tok.decode(std::span<const int32_t>(&id, 1)).size());
  return len;
}

EvalResult evaluate_lm(LanguageModel& model, const TokenCache& tokens, int L, int B,
                       const std::vector<int32_t>* byte_lengths, int64_t max_tokens,
                       const std::function<void(int64_t, int64_t)>& progress) {
  HIPPO_CHECK(L >= 1 && B >= 1, "evaluate_lm: window length ", L, " and batch ", B, " must be >= 1");
  int64_t windows = lm_eval_windows(tokens, L);
  // No windows would report loss 0, "perplexity 1.000": a perfect score for no evidence.
  HIPPO_CHECK(windows > 0, "evaluation: the token stream has ", tokens.size(),
              " tokens; at least 2 are needed to predict one");
  if (max_tokens > 0) windows = std::min<int64_t>(windows, (max_tokens + L - 1) / L);
  double nats = 0;
  int64_t count = 0, bytes = 0;
  Batch batch;
  for (int64_t w = 0; w < windows; w += B) {
    const int nb = static_cast<int>(std::min<int64_t>(B, windows - w));
    lm_eval_batch(tokens, L, w, nb, batch);
    model.forward(batch.tokens.data(), nb, L);
    LossStats s = model.loss(batch.targets.data(), false);
    nats += s.loss * s.count;
    count += s.count;
    if (byte_lengths)
      for (int32_t t : batch.targets)
        if (t >= 0 && t < static_cast<int32_t>(byte_lengths->size())) bytes += (*byte_lengths)[t];
    if (progress) progress(std::min<int64_t>(w + nb, windows), windows);
  }
  EvalResult r;
  const double loss = nats / std::max<int64_t>(count, 1);
  r.metrics["loss"] = loss;
  r.metrics["ppl"] = std::exp(loss);
  r.metrics["tokens"] = static_cast<double>(count);
  if (byte_lengths && bytes > 0) r.metrics["bpb"] = nats / std::log(2.0) / static_cast<double>(bytes);
  return r;
}

}  // namespace hippo
