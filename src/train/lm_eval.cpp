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
    LossStats s;
    if (model.prefers_recompute(nb, L)) {  // long windows: the chunked path, constant memory
      ModelState st = model.new_state(nb);
      s = model.score(batch.tokens.data(), batch.targets.data(), nb, L, st);
    } else {
      model.forward(batch.tokens.data(), nb, L);
      s = model.loss(batch.targets.data(), false);
    }
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

namespace {
// [start, end] of every document (see evaluate_lm_documents), in stream order.
std::vector<std::pair<int64_t, int64_t>> document_spans(const TokenCache& tokens, int32_t eot) {
  std::vector<std::pair<int64_t, int64_t>> spans;
  const int64_t n = static_cast<int64_t>(tokens.size());
  int64_t start = 0;
  for (int64_t i = 1; i < n; ++i)
    if (tokens[static_cast<size_t>(i)] == eot) {
      spans.emplace_back(start, i);
      start = i;
    }
  if (start < n - 1) spans.emplace_back(start, n - 1);
  return spans;
}

int bucket_of(int64_t position) {  // floor(log2(position)), position >= 1
  int k = 0;
  while ((position >> (k + 1)) > 0) ++k;
  return k;
}
}  // namespace

EvalResult evaluate_lm_documents(const LanguageModel& model, const TokenCache& tokens, int32_t eot,
                                 const std::vector<int32_t>* byte_lengths, int64_t max_tokens,
                                 const std::function<void(int64_t, int64_t)>& progress,
                                 std::vector<PositionBucket>* by_position) {
  const auto spans = document_spans(tokens, eot);
  HIPPO_CHECK(!spans.empty(), "evaluation: the token stream has ", tokens.size(),
              " tokens; at least 2 are needed to predict one");
  double nats = 0;
  int64_t count = 0, bytes = 0;
  if (by_position) by_position->clear();
  std::vector<int32_t> in, target;
  std::vector<float> nll;
  for (size_t d = 0; d < spans.size() && (max_tokens <= 0 || count < max_tokens); ++d) {
    const auto [start, end] = spans[d];
    ModelState st = model.new_state(1);
    // The document in pieces of one chunk read from the mapped stream: nothing of its length
    // is held, the state carries everything before the piece.
    const int64_t piece = st.chunk, predict = end - start;
    for (int64_t off = 0; off < predict && (max_tokens <= 0 || count < max_tokens); off += piece) {
      int64_t n = std::min(piece, predict - off);
      if (max_tokens > 0) n = std::min(n, max_tokens - count);
      in.resize(static_cast<size_t>(n));
      target.resize(static_cast<size_t>(n));
      nll.resize(static_cast<size_t>(n));
      tokens.read(static_cast<size_t>(start + off), static_cast<size_t>(n), in.data());
      tokens.read(static_cast<size_t>(start + off + 1), static_cast<size_t>(n), target.data());
      const LossStats s = model.score(in.data(), target.data(), 1, static_cast<int>(n), st, nll.data());
      nats += s.loss * static_cast<double>(s.count);
      count += s.count;
      for (int64_t j = 0; j < n; ++j) {
        const int32_t t = target[static_cast<size_t>(j)];
        const int64_t b = byte_lengths && t < static_cast<int32_t>(byte_lengths->size())
                              ? (*byte_lengths)[static_cast<size_t>(t)] : 0;
        bytes += b;
        if (!by_position) continue;
        const int64_t pos = off + j + 1;  // tokens of context before this prediction
        const size_t k = static_cast<size_t>(bucket_of(pos));
        while (by_position->size() <= k) {
          const int64_t first = int64_t{1} << by_position->size();
          by_position->push_back({first, 2 * first - 1, 0.0, 0, 0});
        }
        PositionBucket& pb = (*by_position)[k];
        pb.nats += nll[static_cast<size_t>(j)];
        pb.tokens += 1;
        pb.bytes += b;
      }
    }
    if (progress) progress(static_cast<int64_t>(d) + 1, static_cast<int64_t>(spans.size()));
  }
  EvalResult r;
  const double loss = nats / std::max<int64_t>(count, 1);
  r.metrics["loss"] = loss;
  r.metrics["ppl"] = std::exp(loss);
  r.metrics["tokens"] = static_cast<double>(count);
  r.metrics["documents"] = static_cast<double>(spans.size());
  if (byte_lengths && bytes > 0) r.metrics["bpb"] = nats / std::log(2.0) / static_cast<double>(bytes);
  return r;
}

}  // namespace hippo
