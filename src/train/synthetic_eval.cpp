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
  int64_t count = 0, correct_last = 0;
  for (int start = 0; start < test.n; start += batch_size) {
    const int B = std::min(batch_size, test.n - start);
    const size_t off = static_cast<size_t>(start) * L;
    const float* logits = model.forward(all.tokens.data() + off, B, L);
    for (int b = 0; b < B; ++b) {
      const float* row = logits + (static_cast<int64_t>(b) * L + L - 1) * V;
      const int64_t pred = std::max_element(row, row + V) - row;
      correct_last += pred == all.targets[off + static_cast<size_t>(b) * L + L - 1];
    }
    LossStats s = model.loss(all.targets.data() + off, false);
    loss_sum += s.loss * s.count;
    count += s.count;
  }
  EvalResult r;
  r.metrics["loss"] = loss_sum / std::max<int64_t>(count, 1);
  r.metrics["acc"] = static_cast<double>(correct_last) / test.n;
  return r;
}

}  // namespace hippo
