// LanguageModel::forward_all: the whole-sequence forward of inference (hippo::forward_logits),
// every position's logits. The layers run as in prefill (convolution mode, scratch in the
// state); the head runs a block of rows at a time so that its scratch stays small while the
// caller's output holds all B*L*vocab logits. Kept apart from prefill, which needs only the
// last row, so that prefill's memory does not change.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "models/lm.h"

namespace hippo {

void LanguageModel::forward_all(const int32_t* tokens, int B, int L, ModelState& state,
                                float* logits) const {
  HIPPO_CHECK(B == state.batch, "forward: batch ", B, " but the state was made for batch ",
              state.batch);
  HIPPO_CHECK(L >= 1, "forward: sequence length must be >= 1, got ", L);
  HIPPO_CHECK(state.position == 0, "forward needs a fresh state; this one is at position ",
              state.position);
  const int d = cfg_.d_model;
  const int64_t rows = static_cast<int64_t>(B) * L, n = rows * d;
  float* r = state.resid.get(static_cast<size_t>(n));
  float* normed = state.normed.get(static_cast<size_t>(n));
  float* branch = state.branch.get(static_cast<size_t>(n));
  embed(tokens, B, L, 0, r);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = *blocks_[i];
    b.norm1.forward_inference(r, normed, rows, state.stats);
    b.mixer->prefill(normed, branch, B, L, *state.layers[i], state.work);
    for (int64_t j = 0; j < n; ++j) r[j] += branch[j];
    b.norm2.forward_inference(r, normed, rows, state.stats);
    b.mlp.forward_inference(normed, branch, rows, state.hidden);
    for (int64_t j = 0; j < n; ++j) r[j] += branch[j];
  }
  state.position = L;
  const int64_t V = cfg_.vocab_size, Vp = cfg_.padded_vocab();
  constexpr int64_t kRows = 64;  // head scratch: kRows * padded_vocab floats
  for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
    const int64_t nr = std::min(kRows, rows - r0);
    const float* lg = head(r + r0 * d, nr, state);
    for (int64_t i = 0; i < nr; ++i)
      std::memcpy(logits + (r0 + i) * V, lg + i * Vp, sizeof(float) * static_cast<size_t>(V));
  }
  release_buffers(state.resid, state.normed, state.branch, state.hidden, state.stats,
                  state.final, state.logits);
  state.work.release();
}

}  // namespace hippo
