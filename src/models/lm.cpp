#include "models/lm.h"

#include <cmath>
#include <cstring>
#include <optional>

#include "core/error.h"
#include "core/phase_profile.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/parallel_copy.h"
#include "kernels/matmul.h"
#include "models/memory_check.h"
#include "nn/attention.h"
#include "nn/h3.h"
#include "nn/s4d_mixer.h"

namespace hippo {

std::unique_ptr<Mixer> make_mixer(MixerKind kind, const ModelConfig& cfg) {
  const Discretization disc =
      cfg.discretization == "zoh" ? Discretization::ZOH : Discretization::Bilinear;
  const S4DInit init = cfg.ssm_init == "inv" ? S4DInit::Inv : S4DInit::Lin;
  if (kind == MixerKind::Attention)
    return std::make_unique<Attention>(cfg.d_model, cfg.attn_heads, cfg.rotary_dim);
  if (kind == MixerKind::S4D) {
    auto m = std::make_unique<S4DMixer>(cfg.d_model, cfg.d_state, disc);
    m->ssm_init = init;
    return m;
  }
  auto m = std::make_unique<H3>(cfg.d_model, cfg.d_state, cfg.head_dim,
                                kind != MixerKind::H3NoShift, kind != MixerKind::H3NoDiag, disc);
  m->ssm_init = init;
  return m;
}

Block::Block(const ModelConfig& cfg, MixerKind kind)
    : norm1(cfg.d_model), norm2(cfg.d_model), mixer(make_mixer(kind, cfg)), mlp(cfg.d_model) {}

LanguageModel::LanguageModel(ModelConfig cfg) : cfg_(std::move(cfg)), ln_f_(cfg_.d_model) {
  cfg_.validate("model config");
  check_model_memory(cfg_, ModelUse::Any, "model config");  // before anything is allocated
  const int d = cfg_.d_model;
  wte_ = make_param({cfg_.padded_vocab(), d}, ParamKind::Decay);
  wte_.accepts_stored = true;
  params_.push_back({"backbone.embeddings.word_embeddings.weight", &wte_});
  if (cfg_.learned_pos) {
    wpe_ = make_param({cfg_.max_position, d}, ParamKind::Decay);
    params_.push_back({"backbone.embeddings.position_embeddings.weight", &wpe_});
  }
  for (int i = 0; i < cfg_.n_layer; ++i) {
    blocks_.push_back(std::make_unique<Block>(cfg_, cfg_.mixers[i]));
    const std::string pre = "backbone.layers." + std::to_string(i) + ".";
    Block& b = *blocks_.back();
    block_params_begin_.push_back(params_.size());
    b.norm1.collect_params(pre + "norm1.", params_);
    b.mixer->collect_params(pre + "mixer.", params_);
    b.norm2.collect_params(pre + "norm2.", params_);
    b.mlp.collect_params(pre + "mlp.", params_);
  }
  const size_t before_ln_f = params_.size();
  ln_f_.collect_params("backbone.ln_f.", params_);
  ln_f_params_ = params_.size() - before_ln_f;
  masks_.resize(1 + 2 * cfg_.n_layer);
}

void LanguageModel::embed_tokens(const int32_t* tokens, int64_t rows, float* r) const {
  gather_rows(tokens, rows, wte_.view(), r);
}

void LanguageModel::tied_head(const float* x, int64_t rows, float* logits) const {
  matmul_xwt(x, rows, wte_.view(), logits);
}

void LanguageModel::init(uint64_t seed) {
  HIPPO_CHECK(external_.empty(), "LanguageModel::init: the weights were loaded for inference "
              "(memory-mapped or bf16); build a new model to train");
  check_model_memory(cfg_, ModelUse::Training, "model config");  // before a weight is written
  Rng rng(seed);
  Rng emb = rng.fork();
  float* w = wte_.value.data();
  for (int64_t i = 0; i < wte_.value.numel(); ++i) w[i] = static_cast<float>(emb.normal() * cfg_.init_std);
  if (cfg_.learned_pos) {
    float* p = wpe_.value.data();
    for (int64_t i = 0; i < wpe_.value.numel(); ++i) p[i] = static_cast<float>(emb.normal() * cfg_.init_std);
  }
  for (auto& b : blocks_) {
    Rng layer = rng.fork();
    b->norm1.init();
    b->norm2.init();
    b->mixer->init(layer, cfg_.n_layer, cfg_.init_std);
    b->mlp.init(layer, cfg_.n_layer, cfg_.init_std);
  }
  ln_f_.init();
}

int64_t LanguageModel::num_params() const {
  int64_t n = 0;
  for (auto& p : params_) n += p.param->value.numel();
  return n;
}

void LanguageModel::zero_grad() {
  for (auto& p : params_) {
    Tensor& g = p.param->grad;
    if (g.contiguous()) parallel_fill(g.data(), 0.0f, g.numel());
    else g.fill(0.0f);
  }
}

void LanguageModel::set_training(bool on, uint64_t seed) {
  training_ = on;
  dropout_rng_ = Rng(seed);
}

// Inverted dropout: kept activations are scaled by 1/(1-p) so evaluation needs no change.
void LanguageModel::dropout_forward(float* x, int64_t n, int site) {
  if (!training_ || cfg_.dropout <= 0.0f) return;
  const float p = cfg_.dropout, keep = 1.0f / (1.0f - p);
  float* m = masks_[site].get(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    m[i] = dropout_rng_.uniform() < p ? 0.0f : keep;
    x[i] *= m[i];
  }
}

void LanguageModel::dropout_backward(float* dx, int64_t n, int site) {
  if (!training_ || cfg_.dropout <= 0.0f) return;
  const float* m = masks_[site].data();
  for (int64_t i = 0; i < n; ++i) dx[i] *= m[i];
}

const float* LanguageModel::forward(const int32_t* tokens, int B, int L) {
  HIPPO_CHECK(B > 0 && L > 0, "forward: batch and length must be positive (got B=", B, ", L=", L, ")");
  HIPPO_CHECK(!cfg_.learned_pos || L <= cfg_.max_position, "sequence length ", L,
              " exceeds the model's max_position ", cfg_.max_position);
  grad_ready_ = false;
  B_ = B;
  L_ = L;
  const int d = cfg_.d_model;
  const int64_t rows = static_cast<int64_t>(B) * L, n = rows * d;
  tokens_.assign(tokens, tokens + rows);
  float* r = resid_.get(n);
  std::optional<prof::Scope> ps(std::in_place, "fwd.embed");
  embed_tokens(tokens, rows, r);
  if (cfg_.learned_pos) {
    const float* pe = wpe_.value.data();
    for (int64_t i = 0; i < rows; ++i)
      for (int c = 0; c < d; ++c) r[i * d + c] += pe[(i % L) * d + c];
  }
  dropout_forward(r, n, 0);
  ps.reset();
  for (size_t i = 0; i < blocks_.size(); ++i) block_forward(i, r, B, L);
  ps.emplace("fwd.norm");
  float* fin = final_.get(n);
  ln_f_.forward(r, fin, rows);
  ps.emplace("fwd.head");
  const int64_t V = cfg_.padded_vocab();
  float* logits = logits_.get(static_cast<size_t>(rows * V));
  tied_head(fin, rows, logits);
  return logits;
}

LossStats LanguageModel::loss(const int32_t* targets, bool want_grad) {
  const int64_t rows = static_cast<int64_t>(B_) * L_, V = cfg_.padded_vocab();
  HIPPO_CHECK(rows > 0, "LanguageModel::loss: no forward() before it");
  float* dlogits = want_grad ? dlogits_.get(static_cast<size_t>(rows * V)) : nullptr;
  grad_ready_ = false;  // dlogits_ is (being) replaced or no longer matches
  LossStats s;
  prof::Scope ps("loss");
  s.loss = cross_entropy(logits_.data(), targets, dlogits, rows, V, &s.correct, &s.count);
  grad_ready_ = want_grad;
  return s;
}

void LanguageModel::backward(float scale) {
  HIPPO_CHECK(external_.empty(), "LanguageModel::backward: the weights were loaded for inference "
              "(memory-mapped or bf16); training needs a model loaded with load_model");
  HIPPO_CHECK(grad_ready_, "LanguageModel::backward: no gradient to propagate; call forward() "
              "then loss(targets, want_grad = true) first (a loss with want_grad = false, or another "
              "forward since, leaves none)");
  const int d = cfg_.d_model;
  const int64_t rows = static_cast<int64_t>(B_) * L_, n = rows * d, V = cfg_.padded_vocab();
  std::optional<prof::Scope> ps(std::in_place, "bwd.head");
  float* dfin = dbranch_.get(n);
  // Tied head: logits = final E^T, so dfinal = dlogits E and dE += dlogits^T final.
  gemm(false, false, rows, d, V, scale, dlogits_.data(), V, wte_.value.data(), d, 0.0f, dfin, d);
  gemm(true, false, V, d, rows, scale, dlogits_.data(), V, final_.data(), d, 1.0f,
       wte_.grad.data(), d);
  ps.emplace("bwd.norm");
  float* dr = dresid_.get(n);
  ln_f_.backward(dfin, dr);
  ps.reset();
  // Block i's parameters are params_[block_begin(i), block_begin(i + 1)); ln_f's follow the last.
  auto block_begin = [&](size_t i) {
    return i < block_params_begin_.size() ? block_params_begin_[i] : params_.size() - ln_f_params_;
  };
  if (grads_final_) grads_final_(block_begin(blocks_.size()), params_.size());
  float* dbranch = dbranch_.get(n);
  float* dnormed = dnormed_.get(n);
  float* tmp = normed_.get(n);  // free after forward
  for (int i = static_cast<int>(blocks_.size()) - 1; i >= 0; --i) {
    Block& b = *blocks_[i];
    ps.emplace("bwd.resid");
    parallel_copy(dbranch, dr, n);
    dropout_backward(dbranch, n, 2 + 2 * i);
    ps.emplace("bwd.mlp");
    b.mlp.backward(dbranch, dnormed);
    ps.emplace("bwd.norm");
    b.norm2.backward(dnormed, tmp);
    ps.emplace("bwd.resid");
    parallel_add(dr, tmp, n);
    parallel_copy(dbranch, dr, n);
    dropout_backward(dbranch, n, 1 + 2 * i);
    ps.emplace(cfg_.mixers[i] == MixerKind::Attention ? "bwd.attn" : "bwd.h3");
    b.mixer->backward(dbranch, dnormed);
    ps.emplace("bwd.norm");
    b.norm1.backward(dnormed, tmp);
    ps.emplace("bwd.resid");
    parallel_add(dr, tmp, n);
    ps.reset();
    if (grads_final_) grads_final_(block_begin(i), block_begin(i + 1));
  }
  ps.emplace("bwd.embed");
  dropout_backward(dr, n, 0);
  embedding_backward(tokens_.data(), dr, wte_.grad.data(), rows, cfg_.padded_vocab(), d);
  if (cfg_.learned_pos) {
    float* dpe = wpe_.grad.data();
    for (int64_t i = 0; i < rows; ++i)
      for (int c = 0; c < d; ++c) dpe[(i % L_) * d + c] += dr[i * d + c];
  }
  if (grads_final_) grads_final_(0, block_begin(0));
}

}  // namespace hippo
