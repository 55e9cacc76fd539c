#include "data/synthetic_batches.h"

#include <numeric>

#include "core/rng.h"

namespace hippo {

static void put_sequence(const SynthDataset& d, int i, int row, Batch& out) {
  const int L = d.seq_len - 1;
  const int32_t* s = d.seq(i);
  const uint8_t* a = d.answers(i);
  for (int t = 0; t < L; ++t) {
    out.tokens[static_cast<size_t>(row) * L + t] = s[t];
    out.targets[static_cast<size_t>(row) * L + t] = !d.loss_on_answers_only || a[t + 1] ? s[t + 1] : -1;
  }
}

void synthetic_batch(const SynthDataset& d, uint64_t seed, int64_t index, int B, Batch& out) {
  out.B = B;
  out.L = d.seq_len - 1;
  out.tokens.resize(static_cast<size_t>(B) * out.L);
  out.targets.resize(out.tokens.size());
  // Sequence k of the stream lives in epoch k / n at a position of that epoch's permutation.
  std::vector<int> perm(d.n);
  int64_t cached_epoch = -1;
  for (int b = 0; b < B; ++b) {
    const int64_t k = index * B + b;
    const int64_t epoch = k / d.n;
    if (epoch != cached_epoch) {
      std::iota(perm.begin(), perm.end(), 0);
      Rng r(seed * 0x100000001b3ULL + static_cast<uint64_t>(epoch));
      for (int i = d.n - 1; i > 0; --i) std::swap(perm[i], perm[r.below(i + 1)]);
      cached_epoch = epoch;
    }
    put_sequence(d, perm[k % d.n], b, out);
  }
}

void synthetic_eval_batch(const SynthDataset& d, Batch& out) {
  out.B = d.n;
  out.L = d.seq_len - 1;
  out.tokens.resize(static_cast<size_t>(d.n) * out.L);
  out.targets.resize(out.tokens.size());
  for (int i = 0; i < d.n; ++i) put_sequence(d, i, i, out);
}

}  // namespace hippo
