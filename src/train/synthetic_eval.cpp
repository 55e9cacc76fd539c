#include "train/synthetic_eval.h"

#include <algorithm>

#include "data/synthetic_batches.h"

namespace hippo {

EvalResult evaluate_synthetic(LanguageModel& model, const SynthDataset& test, int batch_size) {
  const int L = test.seq_len - 1;
  const int64_t V = model.config().padded_vocab();
  Batch all;
  synthetic_eval_batch(test, all);
  double loss_sum = 0;
  int64_t count = 0, answers = 0, correct = 0;
  for (int start = 0; start < test.n; start += batch_size) {
    const int B = std::min(batch_size, test.n - start);
    const size_t off = static_cast<size_t>(start) * L;
    const float* logits = model.forward(all.tokens.data() + off, B, L);
    for (int b = 0; b < B; ++b) {
      // Input position t predicts token t+1: scored where that token is an answer.
      const uint8_t* is_answer = test.answers(start + b);
      for (int t = 0; t < L; ++t) {
        if (!is_answer[t + 1]) continue;
        const float* row = logits + (static_cast<int64_t>(b) * L + t) * V;
        const int64_t pred = std::max_element(row, row + V) - row;
        correct += pred == test.seq(start + b)[t + 1];
        ++answers;
      }
    }
    LossStats s = model.loss(all.targets.data() + off, false);
    loss_sum += s.loss * s.count;
    count += s.count;
  }
  EvalResult r;
  r.metrics["loss"] = loss_sum / std::max<int64_t>(count, 1);
  r.metrics["acc"] = static_cast<double>(correct) / std::max<int64_t>(answers, 1);
  return r;
}

}  // namespace hippo
