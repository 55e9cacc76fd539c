// Recurrent generation for the whole model (spec §6): the prompt runs in convolution mode
// (each mixer's prefill), then every new token is one step per layer from the layer states.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/parallel_work.h"
#include "models/lm.h"

namespace hippo {

ModelState LanguageModel::new_state(int B) const {
  HIPPO_CHECK(B >= 1, "new_state: batch B=", B, " must be >= 1");
  ModelState st;
  st.batch = B;
  for (const auto& b : blocks_) st.layers.push_back(b->mixer->new_state(B));
  return st;
}

void LanguageModel::embed(const int32_t* tokens, int B, int L, int64_t pos0, float* r) const {
  const int d = cfg_.d_model;
  const int64_t rows = static_cast<int64_t>(B) * L;
  embed_tokens(tokens, rows, r);
  if (!cfg_.learned_pos) return;
  HIPPO_CHECK(pos0 + L <= cfg_.max_position, "generation: position ", pos0 + L - 1,
              " is beyond the model's max_position ", cfg_.max_position);
  const float* pe = wpe_.value.data();
  for (int64_t i = 0; i < rows; ++i) {
    const float* p = pe + (pos0 + i % L) * d;
    for (int c = 0; c < d; ++c) r[i * d + c] += p[c];
  }
}

const float* LanguageModel::head(const float* r, int B, ModelState& state) const {
  const int d = cfg_.d_model;
  const int64_t V = cfg_.padded_vocab();
  float* fin = state.final.get(static_cast<size_t>(B) * d);
  ln_f_.forward_inference(r, fin, B, state.stats);
  float* logits = state.logits.get(static_cast<size_t>(B * V));
  // Batched: in blocks of vocabulary rows. One oneDNN call over the whole (V, d) embedding
  // with a few rows of activations measured about twice as slow at batch 8 as these blocks,
  // which also split evenly over threads. At batch 1 the single call (a GEMV) is as fast.
  // bf16 weights: the bf16 kernel streams the embedding once for all rows already.
  if (B == 1 || wte_.bf16) {
    tied_head(fin, B, logits);
    return logits;
  }
  const float* E = wte_.value.data();
  constexpr int64_t kBlock = 256;
  const int64_t blocks = (V + kBlock - 1) / kBlock;
  parallel_range(blocks, worth_parallel_step(int64_t{B} * V * d), [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t v0 = blk * kBlock, nv = std::min(kBlock, V - v0);
      gemm(false, true, B, nv, d, 1.0f, fin, d, E + v0 * d, d, 0.0f, logits + v0, V);
    }
  });
  return logits;
}

static void check_state(const ModelState& st, const ModelConfig& cfg, const char* what) {
  HIPPO_CHECK(st.batch >= 1 && static_cast<int>(st.layers.size()) == cfg.n_layer, what,
              ": the state has ", st.layers.size(), " layers and batch ", st.batch,
              "; the model has ", cfg.n_layer, " layers (use the model's new_state)");
}

const float* LanguageModel::prefill(const int32_t* tokens, int B, int L, ModelState& state) {
  check_state(state, cfg_, "prefill");
  HIPPO_CHECK(B == state.batch, "prefill: batch ", B, " but the state was made for batch ",
              state.batch);
  HIPPO_CHECK(L >= 1, "prefill: prompt length must be >= 1, got ", L);
  HIPPO_CHECK(state.position == 0, "prefill needs a fresh state; this one is at position ",
              state.position, " (continue it with step)");
  const std::lock_guard<std::mutex> lock(prefill_mutex_);  // the layers' buffers are shared
  grad_ready_ = false;  // the layers' saved activations are about to change
  const int d = cfg_.d_model;
  const int64_t rows = static_cast<int64_t>(B) * L, n = rows * d;
  float* r = gen_resid_.get(static_cast<size_t>(n));
  float* normed = gen_normed_.get(static_cast<size_t>(n));
  float* branch = gen_branch_.get(static_cast<size_t>(n));
  embed(tokens, B, L, 0, r);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    Block& b = *blocks_[i];
    b.norm1.forward(r, normed, rows);
    b.mixer->prefill(normed, branch, B, L, *state.layers[i]);
    for (int64_t j = 0; j < n; ++j) r[j] += branch[j];
    b.norm2.forward(r, normed, rows);
    b.mlp.forward(normed, branch, rows);
    for (int64_t j = 0; j < n; ++j) r[j] += branch[j];
    if (release_prefill_activations) {
      b.norm1.release_activations();
      b.mixer->release_activations();
      b.norm2.release_activations();
      b.mlp.release_activations();
    }
  }
  state.position = L;
  // Only the last position of each sequence needs logits.
  float* last = gen_normed_.data();
  for (int bi = 0; bi < B; ++bi)
    std::memcpy(last + static_cast<int64_t>(bi) * d, r + (static_cast<int64_t>(bi) * L + L - 1) * d,
                sizeof(float) * d);
  return head(last, B, state);
}

// Const, and every buffer it writes is the state's: see the thread rules in lm.h.
const float* LanguageModel::step(const int32_t* tokens, ModelState& state) const {
  check_state(state, cfg_, "step");
  const int B = state.batch, d = cfg_.d_model;
  const int64_t n = static_cast<int64_t>(B) * d;
  float* r = state.resid.get(static_cast<size_t>(n));
  float* normed = state.normed.get(static_cast<size_t>(n));
  float* branch = state.branch.get(static_cast<size_t>(n));
  embed(tokens, B, 1, state.position, r);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = *blocks_[i];
    const Mixer& mixer = *b.mixer;
    b.norm1.forward_inference(r, normed, B, state.stats);
    mixer.step(normed, branch, *state.layers[i]);
    for (int64_t j = 0; j < n; ++j) r[j] += branch[j];
    b.norm2.forward_inference(r, normed, B, state.stats);
    b.mlp.forward_inference(normed, branch, B, state.hidden);
    for (int64_t j = 0; j < n; ++j) r[j] += branch[j];
  }
  ++state.position;
  return head(r, B, state);
}

}  // namespace hippo
