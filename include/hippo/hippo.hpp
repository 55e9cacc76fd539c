// hippo's public C++ API: load a model once, run many sequences against it.
//
//   auto model = hippo::Model::load("model.safetensors");   // shared, immutable, thread-safe
//   hippo::Session s(model);                                 // one sequence's state
//   s.prefill(model->tokenizer().encode("The"));
//   for (int i = 0; i < 20; ++i) s.step(s.sample());
//
// A Model holds only weights, config and tokenizer; it never changes after load, so any number
// of threads may use it at once. A Session holds one sequence's recurrent states (SSM states,
// attention KV caches), its scratch, its last logits and its sampler; a Session is used by one
// thread at a time. Memory grows with what a session has processed, never with what it might.
// Every failure is a hippo::Error (hippo/error.hpp) naming the file or the argument at fault.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hippo/error.hpp"
#include "hippo/tokenizer.hpp"

namespace hippo {

inline constexpr int kApiVersion = 1;
// "0.5.0"
const char* version();

// Threads used by every parallel kernel (one process-wide setting). n <= 0: all cores.
void set_num_threads(int n);
int num_threads();
// The CPU's features and the instruction-set level the kernels dispatch to at run time
// (AVX-512 with BF16, AVX-512, AVX2 or scalar; capped by the environment variable HIPPO_ISA).
std::string cpu_features();
// Frees the per-thread scratch every kernel keeps between calls (FFT buffers, packed weights).
// Call only while no hippo work runs on any thread; the next call allocates again.
void release_thread_scratch();

struct ModelInfo {
  std::string layers;      // "h3,attention,h3,h3"
  int vocab_size = 0;      // logits have this many entries
  int d_model = 0;
  int n_layer = 0;
  int d_state = 0;
  int64_t num_params = 0;
  bool bf16_weights = false;  // the linear layers' weights are bf16 (weights_dtype == "bf16")
  // "fp32", "bf16" or "q8": the dtype the linear layers' and embedding weights were loaded in.
  std::string weights_dtype = "fp32";
  std::string kv_cache = "fp32";  // the KV cache dtype its sessions use (LoadOptions::kv_cache)
  std::string q8_layout;          // q8 weights' byte order: "rows" or "rows4"; "" without q8
  std::string bf16_layout;        // bf16 weights' element order: "rows" or "rows8"; "" without
  std::string config_json;  // the full config, as stored in the file
};

struct LoadOptions {
  // Memory-map the file (fp32 used in place, bf16 weights stay bf16). false: read into fp32.
  bool mmap = true;
  // Overrides the tokenizer stored in the file ("byte", "gpt2:DIR"); empty: the file's.
  std::string tokenizer;
  // How attention layers cache keys and values while generating: "fp32", "bf16" (half the
  // cache's bytes; logits move by ~1e-4 of their scale, docs/api.md), "q8" (int8 with a scale
  // per row of head_dim values: 1.06 bytes per value at head_dim 64, docs/api.md), or "auto":
  // bf16 for bf16 and q8 weight files, fp32 for fp32 files. Saved sessions record it and load only
  // into a model with the same setting.
  std::string kv_cache = "auto";
  // q8 files: "rows" uses the weights where the file is mapped (no copy), "rows4" copies them
  // once into four interleaved rows, which batch-1 decoding on AVX512-VNNI reads as one stream
  // (~25% more tokens/s on the 125M hybrid, docs/performance.md), "auto": rows4 where that
  // kernel runs, else rows. Results are the same bits either way.
  std::string q8_layout = "auto";
  // bf16 files: "rows" uses the weights where the file is mapped (no copy), "rows8" copies
  // them once into eight interleaved rows, which decoding on AVX-512 reads as one stream (1.5x
  // the batch-1 tokens/s of the 125M hybrid, docs/performance.md; the mapped pages are then
  // released), "auto": rows8 where AVX-512 runs, else rows. Results are the same bits.
  std::string bf16_layout = "auto";
};

namespace detail {
struct ModelImpl;
struct SessionImpl;
}  // namespace detail

class Model {
 public:
  // Loads a hippo safetensors file (weights, checkpoint, or a converted H3 checkpoint). The
  // config and tokenizer come from the file. Errors name the file and the tensor or field.
  static std::shared_ptr<const Model> load(const std::string& path, const LoadOptions& opts = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelInfo& info() const;
  const Tokenizer& tokenizer() const;
  const std::string& path() const;

  const detail::ModelImpl& impl() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<detail::ModelImpl> impl);
  std::unique_ptr<detail::ModelImpl> impl_;
};

// temperature 0 is greedy (argmax, lowest id on ties); then top-k, then top-p.
struct SamplingParams {
  float temperature = 1.0f;
  int top_k = 0;        // 0: no limit
  float top_p = 1.0f;   // 1: no limit
  uint64_t seed = 0;
};

class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model, const SamplingParams& sampling = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Model& model() const;
  // Tokens consumed so far.
  int64_t position() const;

  // Runs tokens through the model and returns the logits after the last one, in convolution
  // mode (FlashConv) chunk by chunk from the session's state, fresh or not: any length, in
  // memory set by the chunk (plus attention's KV cache).
  // An empty span or an id outside the vocabulary is an Error.
  std::span<const float> prefill(std::span<const int32_t> tokens);
  // One token; returns the logits that follow it. Constant cost for SSM layers.
  std::span<const float> step(int32_t token);
  // The logits after the last token consumed (vocab_size entries); empty before any token.
  std::span<const float> logits() const;

  // Next token from logits() with this session's sampler (seeded by SamplingParams::seed).
  int32_t sample();
  void set_sampling(const SamplingParams& sampling);
  const SamplingParams& sampling() const;

  // An independent copy: same state, logits and sampler position.
  Session fork() const;
  // Back to the state before any token (sampler reseeded).
  void reset();

  // The state (and last logits) to a file or to bytes (safetensors, format hippo-state-v2,
  // checksummed, tied to this model's config and weights); restore refuses anything else.
  void save(const std::string& path) const;
  void restore(const std::string& path);
  std::vector<uint8_t> save_bytes() const;
  void restore_bytes(std::span<const uint8_t> bytes);

  // Bytes held by this session's state (SSM states, KV caches).
  int64_t state_bytes() const;

  detail::SessionImpl& impl() { return *impl_; }
  const detail::SessionImpl& impl() const { return *impl_; }

 private:
  explicit Session(std::unique_ptr<detail::SessionImpl> impl);
  std::unique_ptr<detail::SessionImpl> impl_;
};

// One decoding step of many sessions of one model, each at its own position: session i
// consumes tokens[i]. Results equal stepping each session alone; the projections of all
// sessions run as one batched product. The continuous-batching server builds on this.
void step_batch(std::span<Session* const> sessions, std::span<const int32_t> tokens);

}  // namespace hippo
