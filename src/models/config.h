// The model configuration (JSON). Every field is validated on load; a wrong one is refused
// with a message naming it.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hippo {

// Mixer kinds. Names as they appear in configs.
enum class MixerKind { H3, Attention, S4D, H3NoShift, H3NoDiag };
std::string mixer_name(MixerKind k);
MixerKind parse_mixer(const std::string& name, const std::string& where);

struct ModelConfig;
// "h3,attention,h3,h3"
std::string layers_summary(const ModelConfig& cfg);

struct ModelConfig {
  int vocab_size = 257;      // as given; the embedding is padded to padded_vocab()
  int d_model = 64;
  int n_layer = 4;
  int d_state = 64;          // N; the diagonal SSM has N/2 complex modes
  int head_dim = 1;          // H3 head dimension p
  int attn_heads = 4;
  int rotary_dim = 0;        // 0: no rotary
  bool learned_pos = false;  // learned absolute positions (Transformer baseline)
  int max_position = 2048;   // size of the learned position table
  float dropout = 0.0f;      // embedding and residual dropout (training only)
  float init_std = 0.02f;    // std of linear and embedding weights at init (spec §4: 0.02)
  std::string discretization = "bilinear";  // or "zoh"
  std::string ssm_init = "lin";             // S4D-Lin or "inv"
  std::vector<MixerKind> mixers;            // one per layer

  // Upper bounds of the size fields (validate() refuses anything above them).
  static constexpr int kMaxVocab = 1 << 24;
  static constexpr int kMaxDModel = 1 << 16;  // also bounds head_dim and attn_heads
  static constexpr int kMaxLayers = 1024;
  static constexpr int kMaxDState = 1 << 12;
  static constexpr int kMaxPosition = 1 << 24;

  int padded_vocab() const { return (vocab_size + 7) / 8 * 8; }
  // Exactly LanguageModel::num_params() for this config, computed without building the model
  // (so that memory can be checked before anything is allocated).
  int64_t num_params() const;

  // Fields: vocab_size, d_model, n_layer, d_state, head_dim, attn_heads, rotary_dim,
  // learned_pos, max_position, dropout, discretization, ssm_init, and the mixers as either
  // "layers": ["h3", "attention", ...] or "mixer": "h3" + "attn_layer_idx": [i, ...].
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
  static ModelConfig load(const std::string& path);
  nlohmann::json to_json() const;
  void validate(const std::string& source) const;
};

}  // namespace hippo
