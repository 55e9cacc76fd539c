// The language model (spec §4): embedding (+ learned positions for the Transformer
// baseline), n_layer pre-norm residual blocks r += Mixer(LN1 r); r += MLP(LN2 r),
// a final LayerNorm and the LM head tied to the embedding.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/buffer.h"
#include "core/rng.h"
#include "models/config.h"
#include "nn/layernorm.h"
#include "nn/mlp.h"
#include "nn/module.h"

namespace hippo {

std::unique_ptr<Mixer> make_mixer(MixerKind kind, const ModelConfig& cfg);

struct Block {
  LayerNorm norm1, norm2;
  std::unique_ptr<Mixer> mixer;
  Mlp mlp;
  Block(const ModelConfig& cfg, MixerKind kind);
};

// The recurrent state of a whole model for `batch` sequences: one MixerState per layer (SSM
// states or a KV cache) and the number of tokens consumed so far (all sequences alike).
struct ModelState {
  int batch = 0;
  int64_t position = 0;
  std::vector<std::unique_ptr<MixerState>> layers;
  // step's scratch and the logits it returns: in the state, so that threads stepping separate
  // states of one model share nothing writable.
  Buffer resid, normed, branch, hidden, stats, final, logits;
};

struct LossStats {
  double loss = 0;      // mean cross-entropy over counted positions
  int64_t count = 0;    // positions with a target >= 0
  int64_t correct = 0;  // of those, argmax == target
};

// Not copyable or movable: params() points into the object itself (hold it in place or by
// std::unique_ptr, as load_model does).
class LanguageModel {
 public:
  explicit LanguageModel(ModelConfig cfg);
  LanguageModel(const LanguageModel&) = delete;
  LanguageModel& operator=(const LanguageModel&) = delete;
  LanguageModel(LanguageModel&&) = delete;
  LanguageModel& operator=(LanguageModel&&) = delete;
  const ModelConfig& config() const { return cfg_; }

  // Training initialisation (spec §4), deterministic in the seed.
  void init(uint64_t seed);
  // All parameters with their official names (spec §5).
  const ParamList& params() const { return params_; }
  int64_t num_params() const;
  void zero_grad();

  // Dropout on during training; `seed` makes the masks of a step reproducible.
  void set_training(bool on, uint64_t seed = 0);

  // tokens (B, L). Computes logits (B*L, padded_vocab) into an internal buffer.
  const float* forward(const int32_t* tokens, int B, int L);
  // Loss of the last forward against targets (B, L); targets < 0 are not counted. With
  // want_grad, also prepares the gradient of the mean loss for backward().
  LossStats loss(const int32_t* targets, bool want_grad = true);
  // Backpropagates `scale` times the mean loss of the last loss() call (scale < 1 for
  // gradient accumulation); adds into every Param::grad. An Error unless the last forward was
  // followed by loss(want_grad = true) (with nothing run in between, prefill included).
  void backward(float scale = 1.0f);

  const float* logits() const { return logits_.data(); }

  // Recurrent generation (lm_generate.cpp); no dropout. Logits are (B, padded_vocab), held by
  // the state, valid until its next prefill or step. A fresh state is the state before
  // position 0. Threads: new_state and step are const and write only the state, so several
  // threads may generate from one model at once, each with its own states; prefill uses the
  // layers' buffers and runs one at a time (a lock). Training (forward, loss, backward) must
  // not run alongside, and prefill overwrites what backward() needs.
  ModelState new_state(int B) const;
  // Runs prompts tokens (B, L) in convolution mode from a fresh state and leaves every layer's
  // recurrent state (or KV cache) after them; returns the logits of the last position.
  const float* prefill(const int32_t* tokens, int B, int L, ModelState& state);
  // One token per sequence (B); returns the logits that follow it.
  const float* step(const int32_t* tokens, ModelState& state) const;
  // When true, prefill frees each layer's saved activations as soon as the next layer runs,
  // so a long prompt's peak memory is one layer's activations instead of all layers' (at 2.7B,
  // about 0.25 MB instead of 7 MB per prompt token). The next prefill or forward then touches
  // fresh pages; `hippo generate` turns it on, benchmarks that repeat prefills leave it off.
  bool release_prefill_activations = false;
  const std::vector<std::unique_ptr<Block>>& blocks() const { return blocks_; }

  // Inference weights (models/load.h, models/bf16_weights.h): memory that parameters point into
  // (a mapped file, bf16 copies), kept alive as long as the model. A model holding any cannot
  // be initialised or trained (an Error), only run.
  void keep_alive(std::shared_ptr<const void> storage) { external_.push_back(std::move(storage)); }
  bool has_external_weights() const { return !external_.empty(); }

 private:
  ModelConfig cfg_;
  Param wte_, wpe_;
  std::vector<std::unique_ptr<Block>> blocks_;
  LayerNorm ln_f_;
  ParamList params_;
  bool training_ = false;
  Rng dropout_rng_{0};

  int B_ = 0, L_ = 0;
  std::vector<int32_t> tokens_;
  Buffer resid_, normed_, branch_, dresid_, dbranch_, dnormed_, final_, logits_, dlogits_;
  std::vector<Buffer> masks_;  // dropout masks, one per site
  float loss_scale_ = 0;       // 1 / count of the last loss()
  bool grad_ready_ = false;    // dlogits_ belongs to the last forward (loss with want_grad)
  // prefill's scratch (the layers' saved activations are overwritten by prefill too).
  Buffer gen_resid_, gen_normed_, gen_branch_;
  std::mutex prefill_mutex_;

  std::vector<std::shared_ptr<const void>> external_;

  // Token embedding rows (fp32 or bf16 weights) of `rows` tokens into r.
  void embed_tokens(const int32_t* tokens, int64_t rows, float* r) const;
  // logits (rows, padded_vocab) = x (rows, d) E^T, the head tied to the embedding.
  void tied_head(const float* x, int64_t rows, float* logits) const;
  // Embedding (+ learned positions from `pos0`) of rows = B*L tokens into r.
  void embed(const int32_t* tokens, int B, int L, int64_t pos0, float* r) const;
  // LN_f and the tied head on B rows of r, into state.logits.
  const float* head(const float* r, int B, ModelState& state) const;

  void dropout_forward(float* x, int64_t n, int site);
  void dropout_backward(float* dx, int64_t n, int site);
};

}  // namespace hippo
