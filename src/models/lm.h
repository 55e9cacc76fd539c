// The language model (spec §4): embedding (+ learned positions for the Transformer
// baseline), n_layer pre-norm residual blocks r += Mixer(LN1 r); r += MLP(LN2 r),
// a final LayerNorm and the LM head tied to the embedding.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "core/buffer.h"
#include "core/rng.h"
#include "models/config.h"
#include "nn/attention.h"
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

// Tokens per chunk when prefill and score run a long sequence (docs/design.md "Chunked prefill
// and evaluation"): the activations of one chunk are the memory a sequence of any length costs
// (SSM-only models; attention adds its KV cache). HIPPO_PREFILL_CHUNK in the environment
// overrides it (tests use small chunks); a ModelState may set its own.
inline constexpr int kDefaultPrefillChunk = 4096;
int default_prefill_chunk();

// The recurrent state of a whole model for `batch` sequences: one MixerState per layer (SSM
// states or a KV cache) and the number of tokens consumed so far (all sequences alike).
struct ModelState {
  int batch = 0;
  int64_t position = 0;
  std::vector<std::unique_ptr<MixerState>> layers;
  int chunk = default_prefill_chunk();  // tokens per chunk of prefill and score (>= 1)
  // The scratch of prefill and step and the logits they return: in the state, so that threads
  // running separate states of one model share nothing writable. prefill's (a prompt's
  // activations, one layer at a time) is released when it returns.
  Buffer resid, normed, branch, hidden, stats, final, logits;
  Workspace work;
};

// How a decoding step (step_many of at most kStepRowsMax rows in all) uses threads (issue 18):
//  - OneRegion (default): one parallel region for the whole step; every thread takes its share
//    of every product's outputs by index and the threads meet at a barrier only where the next
//    operation reads what others wrote (lm_step_team.cpp, docs/performance.md).
//  - PerOp: each product (and the per-token parts above their thresholds) forks its own region.
//    The reference path; steps of more rows always take it.
// The same logits either way (bit for bit on the small-rows kernels). Process-wide; the
// environment variable HIPPO_STEP_THREADING=per-op|one-region sets the starting value.
enum class StepThreading { OneRegion, PerOp };
void set_step_threading(StepThreading mode);
StepThreading step_threading();

// How training picks its step (LanguageModel::prefers_recompute): by the activations' size, or
// forced on or off (`hippo train --recompute auto|on|off`, TrainOptions::recompute).
enum class RecomputeMode { Auto, On, Off };

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
  // followed by loss(want_grad = true) (generation in between changes nothing).
  void backward(float scale = 1.0f);
  // Called by backward() as soon as the gradients of params()[begin, end) are final for this
  // backward (nothing more is added to them before it returns): the final LayerNorm's, then
  // each block's from the last to the first, then the embeddings' at the end; every parameter
  // exactly once. Data-parallel training starts the all-reduce of those gradients while the
  // backward goes on (train/dist/grad_buckets.h). Null (the default): none. Not called by
  // train_step_recompute.
  using GradsFinalFn = std::function<void(size_t begin, size_t end)>;
  void set_grads_final_hook(GradsFinalFn fn) { grads_final_ = std::move(fn); }

  const float* logits() const { return logits_.data(); }

  // Training with recomputation (lm_recompute.cpp; docs/design.md "Training on long
  // sequences"): forward, loss and backward of tokens (B, L) against targets in one call,
  // adding `scale` times the gradient of the mean loss into Param::grad, as forward +
  // loss(targets) + backward(scale) do (equal up to rounding; with dropout, equal masks when
  // one piece holds the whole batch). Runs `seqs_per_piece` sequences at a time (0: as many as
  // fit kRecomputePieceTokens, at least one) and keeps of each block only its input rows; a
  // block's activations are recomputed in the backward, one block at a time, and the head's
  // logits are made and consumed a block of rows at a time. Memory: (n_layer + 1) residual
  // rows of one piece plus one block's activations over one piece, whatever B and the
  // vocabulary. Leaves nothing for backward() (its forward state is cleared).
  LossStats train_step_recompute(const int32_t* tokens, const int32_t* targets, int B, int L,
                                 float scale, int seqs_per_piece = 0);
  static constexpr int64_t kRecomputePieceTokens = 16384;
  // Bytes the plain forward/backward keeps for (B, L) (an estimate: the saved activations of
  // every block, the logits and their gradient), which picks the path in training.
  int64_t plain_training_bytes(int B, int L) const;
  // Whether training (B, L) takes train_step_recompute (and evaluation the chunked path): the
  // mode set by set_recompute when it is On or Off; under Auto (the default),
  // HIPPO_TRAIN_RECOMPUTE=0|1 in the environment when set, else plain_training_bytes over
  // kRecomputeAboveBytes.
  bool prefers_recompute(int B, int L) const;
  void set_recompute(RecomputeMode mode) { recompute_ = mode; }
  RecomputeMode recompute() const { return recompute_; }
  static constexpr int64_t kRecomputeAboveBytes = int64_t{4} << 30;

  // Recurrent generation (lm_generate.cpp); no dropout. Logits are (B, padded_vocab), held by
  // the state (ModelState::logits), valid until its next prefill or step. A fresh state is the
  // state before position 0. Threads: new_state, prefill, step and step_many are const and
  // write only the states they are given (their scratch included), so several threads may
  // generate from one model at once, each with its own states. They leave what training's
  // forward() keeps for backward() alone; training (which writes the parameters) must not run
  // alongside.
  ModelState new_state(int B) const;
  // The dtype of the attention layers' KV caches in the states new_state makes from now on
  // (fp32 unless set; api::LoadOptions::kv_cache picks it for loaded models). Not while other
  // threads make states.
  void set_kv_cache(KvCacheDType t);
  KvCacheDType kv_cache() const { return kv_cache_; }
  // Runs tokens (B, L) in convolution mode continuing from the state (a fresh state: a prompt
  // from position 0), in chunks of state.chunk tokens: every SSM layer carries its state from
  // chunk to chunk (state passing) and attention appends to its KV cache, so the result equals
  // the whole-sequence forward at any L. Leaves every layer's recurrent state (or KV cache)
  // after them; returns the logits of the last position. Peak scratch: about one layer's
  // activations of one chunk, in the state, released before it returns.
  const float* prefill(const int32_t* tokens, int B, int L, ModelState& state) const;
  // Evaluation through the same chunked path: runs tokens (B, L) from the state like prefill
  // and scores targets (B, L) (targets < 0 are not counted) without holding more than a block
  // of rows' logits. nll (B, L), optional: -log p(target) per position (0 where not counted).
  // The returned loss is the mean over counted positions.
  LossStats score(const int32_t* tokens, const int32_t* targets, int B, int L, ModelState& state,
                  float* nll = nullptr) const;
  // prefill that keeps every position's logits: (B*L, vocab_size) into `logits` (unpadded),
  // chunk by chunk like score, continuing from the state. Same thread rules.
  void forward_all(const int32_t* tokens, int B, int L, ModelState& state, float* logits) const;
  // One token per sequence (B); returns the logits that follow it. step_many of one state.
  const float* step(const int32_t* tokens, ModelState& state) const;
  // One step of several states at once, each at its own position and of any batch: `tokens`
  // holds one token per sequence of every state, stacked in order (state k's batch tokens after
  // those of states 0..k-1). The dense products (projections, MLP, norms, head) run once over
  // all rows; the recurrent parts (SSM steps, each state's own KV cache, learned positions at
  // each state's position) per state. Each state's logits equal those of stepping it alone
  // and are left in its own `logits` buffer (state->logits.data(), (batch, padded_vocab));
  // the stacked rows' scratch is the first state's. The states must be distinct.
  void step_many(const int32_t* tokens, std::span<ModelState* const> states) const;
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
  KvCacheDType kv_cache_ = KvCacheDType::F32;
  LayerNorm ln_f_;
  ParamList params_;
  bool training_ = false;
  RecomputeMode recompute_ = RecomputeMode::Auto;
  Rng dropout_rng_{0};

  int B_ = 0, L_ = 0;
  std::vector<int32_t> tokens_;
  Buffer resid_, normed_, branch_, dresid_, dbranch_, dnormed_, final_, logits_, dlogits_;
  std::vector<Buffer> masks_;  // dropout masks, one per site
  float loss_scale_ = 0;       // 1 / count of the last loss()
  bool grad_ready_ = false;    // dlogits_ belongs to the last forward (loss with want_grad)

  std::vector<std::shared_ptr<const void>> external_;
  GradsFinalFn grads_final_;
  std::vector<size_t> block_params_begin_;  // index in params_ of each block's first parameter
  size_t ln_f_params_ = 0;                  // ln_f's parameters, the last in params_

  // Token embedding rows (fp32 or bf16 weights) of `rows` tokens into r.
  void embed_tokens(const int32_t* tokens, int64_t rows, float* r) const;
  // logits (rows, padded_vocab) = x (rows, d) E^T, the head tied to the embedding.
  void tied_head(const float* x, int64_t rows, float* logits) const;
  // Embedding (+ learned positions from `pos0`) of rows = B*L tokens into r.
  void embed(const int32_t* tokens, int B, int L, int64_t pos0, float* r) const;
  // LN_f and the tied head on `rows` rows of r, into state.logits (state.final and .stats as
  // scratch).
  const float* head(const float* r, int64_t rows, ModelState& state) const;
  // One chunk, tokens (B, L) at state.position, through every block from the layer states;
  // leaves the final residual rows (B*L, d) in state.resid and moves the position on.
  void run_chunk(const int32_t* tokens, int B, int L, ModelState& state) const;
  // Calls fn(tokens of the chunk (B, len), offset, len) for the chunks of tokens (B, L), with
  // the chunk's tokens gathered into contiguous rows.
  template <class Fn>
  void for_each_chunk(const int32_t* tokens, int B, int L, int chunk, Fn&& fn) const;
  // step_many's OneRegion path (lm_step_team.cpp), after its checks; rows: all states' sequences.
  void step_many_team(const int32_t* tokens, std::span<ModelState* const> states,
                      int64_t rows) const;
  // Checks shared by prefill and score.
  void check_sequence(const char* what, int B, int L, const ModelState& state) const;

  // train_step_recompute's: each block's input rows of the current piece.
  std::vector<Buffer> block_inputs_;
  // One piece of train_step_recompute: embeds, runs and scores sequences (P, L), backward
  // included; `count` targets are counted in the whole micro-batch (the mean's divisor).
  void recompute_piece(const int32_t* tokens, const int32_t* targets, int P, int L, float scale,
                       int64_t count, double& nats, LossStats& stats);
  // Block i's forward on r (rows of P sequences of L) in place, saving its activations.
  void block_forward(size_t i, float* r, int P, int L);
  void release_block(size_t i);

  void dropout_forward(float* x, int64_t n, int site);
  void dropout_backward(float* dx, int64_t n, int site);
};

}  // namespace hippo
