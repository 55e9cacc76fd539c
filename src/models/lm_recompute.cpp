// Training with recomputation (docs/design.md "Training on long sequences"): the memory of a
// training step on long sequences is the residual rows at each block's input plus one block's
// activations, not every block's activations and a whole batch of logits. The forward runs
// once to get the loss, keeping only each block's input; the backward recomputes one block
// from its input, runs its backward and frees it before the next.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/phase_profile.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/parallel_copy.h"
#include "models/lm.h"

namespace hippo {

int64_t LanguageModel::plain_training_bytes(int B, int L) const {
  // Per token and block: the mixer's saved activations and temporaries (H3: about 16 rows of
  // d; attention adds its scores, ignored here), the MLP's 13 rows of d (its input, 4d pre-
  // and post-activation and gradient), the norms' inputs, the dropout masks; then the logits
  // and their gradient per token.
  const int64_t tokens = static_cast<int64_t>(B) * L, d = cfg_.d_model;
  const int64_t per_token = d * (32 * static_cast<int64_t>(cfg_.n_layer) + 8) + 2 * cfg_.padded_vocab();
  return tokens * per_token * static_cast<int64_t>(sizeof(float));
}

bool LanguageModel::prefers_recompute(int B, int L) const {
  if (recompute_ != RecomputeMode::Auto) return recompute_ == RecomputeMode::On;
  static const int forced = [] {
    const char* env = std::getenv("HIPPO_TRAIN_RECOMPUTE");
    if (env == nullptr || *env == '\0') return -1;
    const std::string v = env;
    HIPPO_CHECK(v == "0" || v == "1", "HIPPO_TRAIN_RECOMPUTE='", v, "' must be 0 or 1");
    return v == "1" ? 1 : 0;
  }();
  if (forced >= 0) return forced == 1;
  return plain_training_bytes(B, L) > kRecomputeAboveBytes;
}

void LanguageModel::block_forward(size_t i, float* r, int P, int L) {
  const int64_t rows = static_cast<int64_t>(P) * L, n = rows * cfg_.d_model;
  float* normed = normed_.get(static_cast<size_t>(n));
  float* branch = branch_.get(static_cast<size_t>(n));
  Block& b = *blocks_[i];
  const bool attn = cfg_.mixers[i] == MixerKind::Attention;
  { prof::Scope ps("fwd.norm"); b.norm1.forward(r, normed, rows); }
  { prof::Scope ps(attn ? "fwd.attn" : "fwd.h3"); b.mixer->forward(normed, branch, P, L); }
  {
    prof::Scope ps("fwd.resid");
    dropout_forward(branch, n, static_cast<int>(1 + 2 * i));
    parallel_add(r, branch, n);
  }
  { prof::Scope ps("fwd.norm"); b.norm2.forward(r, normed, rows); }
  { prof::Scope ps("fwd.mlp"); b.mlp.forward(normed, branch, rows); }
  prof::Scope ps("fwd.resid");
  dropout_forward(branch, n, static_cast<int>(2 + 2 * i));
  parallel_add(r, branch, n);
}

void LanguageModel::release_block(size_t i) {
  Block& b = *blocks_[i];
  b.norm1.release_activations();
  b.mixer->release_activations();
  b.norm2.release_activations();
  b.mlp.release_activations();
  masks_[1 + 2 * i].release();
  masks_[2 + 2 * i].release();
}

void LanguageModel::recompute_piece(const int32_t* tokens, const int32_t* targets, int P, int L,
                                    float scale, int64_t count, double& nats, LossStats& stats) {
  const int d = cfg_.d_model;
  const int64_t rows = static_cast<int64_t>(P) * L, n = rows * d, V = cfg_.padded_vocab();
  const size_t nb = blocks_.size();

  // Forward, keeping each block's input rows and the dropout stream where the block starts
  // (so that its recomputation draws the same masks).
  float* r = resid_.get(static_cast<size_t>(n));
  embed_tokens(tokens, rows, r);
  if (cfg_.learned_pos) {
    const float* pe = wpe_.value.data();
    for (int64_t i = 0; i < rows; ++i)
      for (int c = 0; c < d; ++c) r[i * d + c] += pe[(i % L) * d + c];
  }
  dropout_forward(r, n, 0);
  block_inputs_.resize(nb);
  std::vector<Rng> rng_at(nb, Rng(0));
  for (size_t i = 0; i < nb; ++i) {
    std::memcpy(block_inputs_[i].get(static_cast<size_t>(n)), r, sizeof(float) * n);
    rng_at[i] = dropout_rng_;
    block_forward(i, r, P, L);
    release_block(i);
  }
  const Rng rng_after = dropout_rng_;  // where the next piece's masks start
  float* fin = final_.get(static_cast<size_t>(n));
  ln_f_.forward(r, fin, rows);

  // Head and loss a block of rows at a time: logits, their gradient (the mean's share of this
  // block, times scale), dfinal = dlogits E and dE += dlogits^T final.
  const int64_t head_rows = std::clamp<int64_t>((int64_t{1} << 24) / V, 1, 4096);
  float* dfin = dbranch_.get(static_cast<size_t>(n));
  for (int64_t j0 = 0; j0 < rows; j0 += head_rows) {
    const int64_t m = std::min(head_rows, rows - j0);
    float* lg = logits_.get(static_cast<size_t>(head_rows * V));
    tied_head(fin + j0 * d, m, lg);
    int64_t correct = 0, valid = 0;
    const double loss = cross_entropy(lg, targets + j0, lg, m, V, &correct, &valid);
    nats += loss * static_cast<double>(valid);
    stats.correct += correct;
    if (valid == 0) {
      std::memset(dfin + j0 * d, 0, sizeof(float) * m * d);
      continue;
    }
    // cross_entropy's gradient is of this block's mean (1 / valid): rescale to the batch's.
    const float g = scale * static_cast<float>(static_cast<double>(valid) / static_cast<double>(count));
    gemm(false, false, m, d, V, g, lg, V, wte_.value.data(), d, 0.0f, dfin + j0 * d, d);
    gemm(true, false, V, d, m, g, lg, V, fin + j0 * d, d, 1.0f, wte_.grad.data(), d);
  }
  float* dr = dresid_.get(static_cast<size_t>(n));
  ln_f_.backward(dfin, dr);
  ln_f_.release_activations();

  // Backward, block by block from the last: recompute the block from its input, then as in
  // backward().
  float* dbranch = dbranch_.get(static_cast<size_t>(n));
  float* dnormed = dnormed_.get(static_cast<size_t>(n));
  for (size_t k = nb; k-- > 0;) {
    Block& b = *blocks_[k];
    std::memcpy(r, block_inputs_[k].data(), sizeof(float) * n);
    dropout_rng_ = rng_at[k];
    block_forward(k, r, P, L);
    float* tmp = normed_.get(static_cast<size_t>(n));  // free once the block has run
    std::memcpy(dbranch, dr, sizeof(float) * n);
    dropout_backward(dbranch, n, static_cast<int>(2 + 2 * k));
    b.mlp.backward(dbranch, dnormed);
    b.norm2.backward(dnormed, tmp);
    for (int64_t j = 0; j < n; ++j) dr[j] += tmp[j];
    std::memcpy(dbranch, dr, sizeof(float) * n);
    dropout_backward(dbranch, n, static_cast<int>(1 + 2 * k));
    b.mixer->backward(dbranch, dnormed);
    b.norm1.backward(dnormed, tmp);
    for (int64_t j = 0; j < n; ++j) dr[j] += tmp[j];
    release_block(k);
  }
  dropout_rng_ = rng_after;  // recomputing rewound the stream
  dropout_backward(dr, n, 0);
  embedding_backward(tokens, dr, wte_.grad.data(), rows, V, d);
  if (cfg_.learned_pos) {
    float* dpe = wpe_.grad.data();
    for (int64_t i = 0; i < rows; ++i)
      for (int c = 0; c < d; ++c) dpe[(i % L) * d + c] += dr[i * d + c];
  }
}

LossStats LanguageModel::train_step_recompute(const int32_t* tokens, const int32_t* targets,
                                              int B, int L, float scale, int seqs_per_piece) {
  HIPPO_CHECK(external_.empty(), "LanguageModel::train_step_recompute: the weights were loaded "
              "for inference (memory-mapped or bf16); training needs a model loaded with load_model");
  HIPPO_CHECK(B > 0 && L > 0, "train_step_recompute: batch and length must be positive (got B=",
              B, ", L=", L, ")");
  HIPPO_CHECK(!cfg_.learned_pos || L <= cfg_.max_position, "sequence length ", L,
              " exceeds the model's max_position ", cfg_.max_position);
  HIPPO_CHECK(seqs_per_piece >= 0, "train_step_recompute: seqs_per_piece must be >= 0, got ",
              seqs_per_piece);
  grad_ready_ = false;  // backward() has nothing to propagate after this
  B_ = L_ = 0;
  const int64_t total = static_cast<int64_t>(B) * L;
  int64_t count = 0;
  for (int64_t i = 0; i < total; ++i) count += targets[i] >= 0;
  const int P = seqs_per_piece > 0
                    ? std::min(seqs_per_piece, B)
                    : static_cast<int>(std::clamp<int64_t>(kRecomputePieceTokens / L, 1, B));
  LossStats stats;
  stats.count = count;
  double nats = 0;
  struct Release {  // the pieces' buffers go when the step ends, normally or by an exception
    LanguageModel& m;
    ~Release() {
      for (auto& b : m.block_inputs_) b.release();
      release_buffers(m.resid_, m.normed_, m.branch_, m.dresid_, m.dbranch_, m.dnormed_,
                      m.final_, m.logits_, m.masks_[0]);
      for (size_t i = 0; i < m.blocks_.size(); ++i) m.release_block(i);
      m.ln_f_.release_activations();
    }
  } release{*this};
  for (int b0 = 0; b0 < B; b0 += P) {
    const int p = std::min(P, B - b0);
    const int64_t off = static_cast<int64_t>(b0) * L;
    recompute_piece(tokens + off, targets + off, p, L, scale, count, nats, stats);
  }
  stats.loss = count > 0 ? nats / static_cast<double>(count) : 0.0;
  return stats;
}

}  // namespace hippo
