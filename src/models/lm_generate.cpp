// Recurrent generation for the whole model (spec §6): the prompt runs in convolution mode
// (each mixer's prefill), then every new token is one step per layer from the layer states.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"
#include "kernels/parallel_work.h"
#include "models/lm.h"

namespace hippo {

void LanguageModel::set_kv_cache(KvCacheDType t) {
  kv_cache_ = t;
  for (auto& b : blocks_)
    if (auto* a = dynamic_cast<Attention*>(b->mixer.get())) a->set_kv_cache(t);
}

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

const float* LanguageModel::head(const float* r, int64_t rows, ModelState& state) const {
  const int d = cfg_.d_model;
  const int64_t V = cfg_.padded_vocab();
  float* fin = state.final.get(static_cast<size_t>(rows) * d);
  ln_f_.forward_inference(r, fin, rows, state.stats);
  float* logits = state.logits.get(static_cast<size_t>(rows * V));
  // Batched: in blocks of vocabulary rows. One oneDNN call over the whole (V, d) embedding
  // with a few rows of activations measured about twice as slow at batch 8 as these blocks,
  // which also split evenly over threads. At batch 1 the single call (a GEMV) is as fast.
  // bf16 weights: the bf16 kernel streams the embedding once for all rows already.
  if (rows == 1 || wte_.view().dtype != DType::F32) {
    tied_head(fin, rows, logits);
    return logits;
  }
  const float* E = wte_.value.data();
  constexpr int64_t kBlock = 256;
  const int64_t blocks = (V + kBlock - 1) / kBlock;
  parallel_range(blocks, worth_parallel_step(rows * V * d), [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t v0 = blk * kBlock, nv = std::min(kBlock, V - v0);
      gemm(false, true, rows, nv, d, 1.0f, fin, d, E + v0 * d, d, 0.0f, logits + v0, V);
    }
  });
  return logits;
}

static void check_state(const ModelState& st, const ModelConfig& cfg, const char* what) {
  HIPPO_CHECK(st.batch >= 1 && static_cast<int>(st.layers.size()) == cfg.n_layer, what,
              ": the state has ", st.layers.size(), " layers and batch ", st.batch,
              "; the model has ", cfg.n_layer, " layers (use the model's new_state)");
}

const float* LanguageModel::step(const int32_t* tokens, ModelState& state) const {
  ModelState* one = &state;
  step_many(tokens, std::span<ModelState* const>(&one, 1));
  return state.logits.data();
}

// Const, and every buffer it writes is one of the states': see the thread rules in lm.h.
void LanguageModel::step_many(const int32_t* tokens, std::span<ModelState* const> states) const {
  HIPPO_CHECK(!states.empty(), "step_many: no states");
  // Every check before anything changes, so that a refused call leaves all states as they were.
  int64_t rows = 0;  // sequences of all states
  for (const ModelState* st : states) {
    HIPPO_CHECK(st != nullptr, "step_many: a null state");
    check_state(*st, cfg_, "step");
    HIPPO_CHECK(!cfg_.learned_pos || st->position + 1 <= cfg_.max_position,
                "generation: position ", st->position, " is beyond the model's max_position ",
                cfg_.max_position);
    rows += st->batch;
  }
  if (states.size() > 1) {
    std::vector<const ModelState*> sorted(states.begin(), states.end());
    std::sort(sorted.begin(), sorted.end());
    HIPPO_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(),
                "step_many: the same state is given twice");
  }
  if (rows <= kStepRowsMax && step_threading() == StepThreading::OneRegion)
    return step_many_team(tokens, states, rows);
  ModelState& first = *states[0];
  const int d = cfg_.d_model;
  const int64_t n = rows * d;
  float* r = first.resid.get(static_cast<size_t>(n));
  float* normed = first.normed.get(static_cast<size_t>(n));
  float* branch = first.branch.get(static_cast<size_t>(n));
  {
    int64_t off = 0;
    for (const ModelState* st : states) {  // each state's positions are its own
      embed(tokens + off, st->batch, 1, st->position, r + off * d);
      off += st->batch;
    }
  }
  std::vector<MixerState*> layer(states.size());
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = *blocks_[i];
    for (size_t k = 0; k < states.size(); ++k) layer[k] = states[k]->layers[i].get();
    b.norm1.forward_inference(r, normed, rows, first.stats);
    b.mixer->step_many(normed, branch, layer);
    for (int64_t j = 0; j < n; ++j) r[j] += branch[j];
    b.norm2.forward_inference(r, normed, rows, first.stats);
    b.mlp.forward_inference(normed, branch, rows, first.hidden);
    for (int64_t j = 0; j < n; ++j) r[j] += branch[j];
  }
  for (ModelState* st : states) ++st->position;
  // The head over all rows into the first state's logits, then each other state's rows into
  // its own.
  const float* all = head(r, rows, first);
  const int64_t V = cfg_.padded_vocab();
  int64_t off = first.batch;
  for (size_t k = 1; k < states.size(); ++k) {
    ModelState& st = *states[k];
    float* dst = st.logits.get(static_cast<size_t>(st.batch * V));
    std::memcpy(dst, all + off * V, sizeof(float) * static_cast<size_t>(st.batch * V));
    off += st.batch;
  }
}

}  // namespace hippo
