// Causal multi-head self-attention (spec §4), with optional GPT-NeoX rotary embeddings.
#pragma once
#include <memory>
#include <vector>

#include "core/buffer.h"
#include "nn/linear.h"
#include "nn/module.h"

namespace hippo {

// How a KV cache stores keys and values: fp32, bf16 (half the bytes a decode step reads from
// the cache; kernels/kv_bf16.h) or q8 (int8 with an fp32 scale per row of head_dim values:
// 1.06 bytes per value at head_dim 64; kernels/kv_q8.h). Scores, softmax and context stay fp32.
enum class KvCacheDType { F32, BF16, Q8 };
const char* kv_cache_name(KvCacheDType t);  // "fp32" | "bf16" | "q8"

// The KV cache of one attention layer for B sequences: keys (after rotary) and values,
// laid out (B, heads, capacity, head_dim) so that each head's keys are contiguous; in k, v
// (fp32), k16, v16 (bf16 bits) or k8, v8 with their scales ks, vs (B, heads, capacity), by
// dtype; the others stay empty.
struct AttentionCache : MixerState {
  int batch = 0;
  int len = 0;           // tokens cached per sequence
  int64_t capacity = 0;  // tokens that fit before the next growth (doubling)
  KvCacheDType dtype = KvCacheDType::F32;
  std::vector<float> k, v;
  std::vector<uint16_t> k16, v16;
  std::vector<int8_t> k8, v8;
  std::vector<float> ks, vs;
  // Grows to `cap` tokens per (sequence, head) pair (cap >= capacity), keeping the cached ones.
  void grow(int heads, int dh, int64_t cap);
  // Pair bh's first `len` rows of keys (values: `values`) as fp32 into dst (len * dh floats),
  // and back (bf16: rounded to nearest even, exact for values read out of a bf16 cache; q8:
  // each row quantized, kv_q8_quantize_row).
  void read_rows(bool values, int64_t bh, int dh, float* dst) const;
  void write_rows(bool values, int64_t bh, int dh, const float* src);
  // A q8 cache's first `len` rows of pair bh as they are stored: the int8 values as floats
  // (len * dh) and the row scales (len), and back (the values must be whole numbers in
  // [-127, 127]). For saving and loading states exactly; either output of read_q8_rows may be
  // null.
  void read_q8_rows(bool values, int64_t bh, int dh, float* q, float* scales) const;
  void write_q8_rows(bool values, int64_t bh, int dh, const float* q, const float* scales);
  int64_t bytes() const {
    return static_cast<int64_t>((k.size() + v.size() + ks.size() + vs.size()) * sizeof(float) +
                                (k16.size() + v16.size()) * sizeof(uint16_t) + k8.size() +
                                v8.size());
  }
  // The cached keys and values: len of capacity rows per (sequence, head).
  int64_t step_bytes() const override {
    return capacity > 0 ? bytes() / capacity * len : 0;
  }
  Buffer qkv, ctx, scores, rot;  // step's scratch: here so that threads share nothing writable
};

class Attention : public Mixer {
 public:
  // rotary_dim: 0 (none) or an even number <= d / n_heads.
  Attention(int d, int n_heads, int rotary_dim = 0);

  // "Wqkv.weight" (3d, d): rows are all q heads, then k, then v, each head's dims contiguous;
  // "Wqkv.bias" (3d), "out_proj.weight" (d, d), "out_proj.bias" (d).
  void collect_params(const std::string& prefix, ParamList& out) override;
  void forward(const float* x, float* y, int B, int L) override;
  void backward(const float* dy, float* dx) override;
  void release_activations() override;
  // Wqkv N(0, 0.02), out_proj N(0, 0.02/sqrt(2 n_layer)), biases 0.
  void init(Rng& rng, int n_layer, float std = 0.02f) override;

  std::unique_ptr<MixerState> new_state(int B) const override;
  // One batched forward over x in `ws` (no backward state, O(threads * (cached + L)) score
  // memory): appends x's keys and values to the cache, then each row attends to everything
  // cached up to itself.
  using Mixer::prefill;
  void prefill(const float* x, float* y, int B, int L, MixerState& state,
               Workspace& ws) const override;
  void step_many(const float* x, float* y, std::span<MixerState* const> states) const override;
  void prepare_team_step(std::span<MixerState* const> states) const override;
  void step_team(const float* x, float* y, std::span<MixerState* const> states,
                 const Team& team) const override;

  // The plain path: triple loops in double precision, nothing kept. Tests hold forward to it.
  void forward_reference(const float* x, float* y, int B, int L) const;

  int dim() const { return d_; }
  int heads() const { return heads_; }
  int head_dim() const { return dh_; }
  int rotary_dim() const { return rot_; }
  // The dtype of the caches new_state makes from now on (a model-level setting,
  // LanguageModel::set_kv_cache; states made before keep theirs).
  void set_kv_cache(KvCacheDType t) { kv_dtype_ = t; }
  KvCacheDType kv_cache() const { return kv_dtype_; }

  Linear Wqkv, out_proj;

 private:
  // cos/sin of position t * inv_freq[i], i < rot/2, into c and s.
  void rotary_angles(int64_t t, float* c, float* s) const;
  // Rotates the first rot_ dims of one head vector by the angles (inverse = transpose).
  void rotate(float* v, const float* c, const float* s, bool inverse) const;
  // Applies rotary (or its transpose) to q and k of every row of a (B*L, 3d) buffer, row t of
  // a sequence at position pos0 + t; `table` is scratch for the angles.
  void rotate_qk(float* qkv, int B, int L, bool inverse, Buffer& table, int64_t pos0 = 0) const;
  bool parallel_worthwhile(int B, int L) const;
  // Where a forward pass puts q, k, v (B*L, 3d), the context (B*L, d) and its scratch: the
  // layer's buffers (training) or a workspace's (prefill).
  struct Acts {
    Buffer &qkv, &ctx, &block, &rot_table;
  };
  // The forward pass shared by training and prefill. With `probs` (B*heads*L*L), keeps every
  // probability row there for backward; without, needs only a block of rows per thread.
  void run(const float* x, float* y, int B, int L, float* probs, Acts& a) const;
  // Attention of one state's new token over its cache: rotates q and k of its rows of qkv
  // (B, 3d) in place at its position, appends k and v to the cache, writes the context rows.
  void attend_step(AttentionCache& c, float* qkv, float* ctx) const;
  // attend_step's parts: the cache room, rotary angles and scores for the next token (one
  // thread, before), then (sequence, head) pair bh of the state, any pairs on any threads
  // (then the caller moves c.len on).
  void attend_setup(AttentionCache& c) const;
  void attend_pair(AttentionCache& c, float* qkv, float* ctx, int64_t bh) const;

  // Query rows per causal block (small enough to skip most masked work, big enough for GEMM).
  static constexpr int kRowBlock = 32;

  int d_, heads_, dh_, rot_;
  float scale_;
  KvCacheDType kv_dtype_ = KvCacheDType::F32;
  std::vector<double> inv_freq_;
  int B_ = 0, L_ = 0;
  Buffer x_, qkv_, probs_, ctx_, dctx_, dqkv_, block_, rot_table_;
};

}  // namespace hippo
