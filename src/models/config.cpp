#include "models/config.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "core/error.h"
#include "io/strict_json.h"

namespace hippo {

using nlohmann::json;

constexpr uintmax_t kMaxConfigBytes = 1 << 20;

static const std::pair<MixerKind, const char*> kMixerNames[] = {
    {MixerKind::H3, "h3"},
    {MixerKind::Attention, "attention"},
    {MixerKind::S4D, "s4d"},
    {MixerKind::H3NoShift, "h3_noshift"},
    {MixerKind::H3NoDiag, "h3_nodiag"},
};

std::string mixer_name(MixerKind k) {
  for (auto& [kind, name] : kMixerNames)
    if (kind == k) return name;
  return "?";
}

MixerKind parse_mixer(const std::string& name, const std::string& where) {
  for (auto& [kind, n] : kMixerNames)
    if (name == n) return kind;
  fail(where, ": unknown mixer '", name, "' (expected h3, attention, s4d, h3_noshift or h3_nodiag)");
}

std::string layers_summary(const ModelConfig& cfg) {
  std::string s;
  for (auto m : cfg.mixers) {
    if (!s.empty()) s += ',';
    s += mixer_name(m);
  }
  return s;
}

namespace {

// Typed field readers: the JSON value must already be of the field's type. nlohmann's get<int>
// would accept `true` (1), truncate 32.7 to 32 and wrap 4294967328 to 32.
void read_int(const json& j, const char* key, int& out, int64_t lo, int64_t hi,
              const std::string& source) {
  if (!j.contains(key)) return;
  const json& v = j.at(key);
  HIPPO_CHECK(v.is_number_integer(), source, ": field '", key,
              "' has the wrong type: must be an integer in ", lo, "..", hi, ", got ", v.dump());
  // Compared as 64-bit values (unsigned ones above INT64_MAX are out of range anyway).
  const bool in_range = v.is_number_unsigned()
                            ? v.get<uint64_t>() <= static_cast<uint64_t>(hi)
                            : v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
  HIPPO_CHECK(in_range, source, ": field '", key, "' must be an integer in ", lo, "..", hi,
              ", got ", v.dump());
  out = static_cast<int>(v.get<int64_t>());
}

void read_float(const json& j, const char* key, float& out, const std::string& source) {
  if (!j.contains(key)) return;
  const json& v = j.at(key);
  HIPPO_CHECK(v.is_number(), source, ": field '", key,
              "' has the wrong type: must be a number, got ", v.dump());
  HIPPO_CHECK(std::isfinite(v.get<double>()), source, ": field '", key,
              "' must be a finite number, got ", v.dump());
  out = static_cast<float>(v.get<double>());
}

void read_bool(const json& j, const char* key, bool& out, const std::string& source) {
  if (!j.contains(key)) return;
  const json& v = j.at(key);
  HIPPO_CHECK(v.is_boolean(), source, ": field '", key, "' has the wrong type: must be true or false, got ",
              v.dump());
  out = v.get<bool>();
}

void read_string(const json& j, const char* key, std::string& out, const std::string& source) {
  if (!j.contains(key)) return;
  const json& v = j.at(key);
  HIPPO_CHECK(v.is_string(), source, ": field '", key, "' has the wrong type: must be a string, got ",
              v.dump());
  out = v.get<std::string>();
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& j, const std::string& source) {
  HIPPO_CHECK(j.is_object(), source, ": model config must be a JSON object");
  static const std::set<std::string> known = {
      "vocab_size", "d_model",    "n_layer",      "d_state",  "head_dim",
      "attn_heads", "rotary_dim", "learned_pos",  "max_position", "dropout",
      "discretization", "ssm_init", "layers", "mixer", "attn_layer_idx", "init_std"};
  for (auto& [k, v] : j.items())
    HIPPO_CHECK(known.count(k), source, ": unknown field '", k, "'");
  for (const char* req : {"vocab_size", "d_model", "n_layer"})
    HIPPO_CHECK(j.contains(req), source, ": missing field '", req, "'");
  ModelConfig c;
  read_int(j, "vocab_size", c.vocab_size, 1, kMaxVocab, source);
  read_int(j, "d_model", c.d_model, 1, kMaxDModel, source);
  read_int(j, "n_layer", c.n_layer, 1, kMaxLayers, source);
  read_int(j, "d_state", c.d_state, 2, kMaxDState, source);
  read_int(j, "head_dim", c.head_dim, 1, kMaxDModel, source);
  read_int(j, "attn_heads", c.attn_heads, 1, kMaxDModel, source);
  read_int(j, "rotary_dim", c.rotary_dim, 0, kMaxDModel, source);
  read_bool(j, "learned_pos", c.learned_pos, source);
  read_int(j, "max_position", c.max_position, 1, kMaxPosition, source);
  read_float(j, "dropout", c.dropout, source);
  read_float(j, "init_std", c.init_std, source);
  read_string(j, "discretization", c.discretization, source);
  read_string(j, "ssm_init", c.ssm_init, source);
  if (j.contains("layers")) {
    HIPPO_CHECK(!j.contains("mixer") && !j.contains("attn_layer_idx"), source,
                ": give either 'layers' or 'mixer' + 'attn_layer_idx', not both");
    HIPPO_CHECK(j["layers"].is_array(), source, ": field 'layers' must be an array of mixer names");
    for (size_t i = 0; i < j["layers"].size(); ++i) {
      const auto& v = j["layers"][i];
      std::string where = source + ": layers[" + std::to_string(i) + "]";
      HIPPO_CHECK(v.is_string(), where, " must be a string");
      c.mixers.push_back(parse_mixer(v.get<std::string>(), where));
    }
  } else {
    std::string def = "h3";
    read_string(j, "mixer", def, source);
    c.mixers.assign(c.n_layer, parse_mixer(def, source + ": field 'mixer'"));
    if (j.contains("attn_layer_idx")) {
      HIPPO_CHECK(j["attn_layer_idx"].is_array(), source, ": field 'attn_layer_idx' must be an array");
      for (auto& v : j["attn_layer_idx"]) {
        // Compared as int64: get<int>() would wrap 4294967296 to 0.
        const bool in_range = v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX) &&
                              v.get<int64_t>() >= 0 && v.get<int64_t>() < c.n_layer;
        HIPPO_CHECK(in_range, source, ": attn_layer_idx entry ", v.dump(),
                    " must be an integer in 0..", c.n_layer - 1);
        c.mixers[static_cast<size_t>(v.get<int64_t>())] = MixerKind::Attention;
      }
    }
  }
  c.validate(source);
  return c;
}

ModelConfig ModelConfig::load(const std::string& path) {
  // A config is a few hundred bytes: refuse folders, devices and anything over 1 MiB before
  // reading, so that `-c /dev/zero` or a misnamed corpus cannot fill memory.
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  HIPPO_CHECK(!ec && std::filesystem::exists(st), path, ": cannot open model config (no such file)");
  HIPPO_CHECK(std::filesystem::is_regular_file(st), path,
              ": model config must be a regular JSON file, not a folder or device");
  const uintmax_t size = std::filesystem::file_size(path, ec);
  HIPPO_CHECK(!ec && size <= kMaxConfigBytes, path, ": model config is ", size,
              " bytes, over the ", kMaxConfigBytes, "-byte limit for a config");
  std::ifstream in(path, std::ios::binary);
  HIPPO_CHECK(in.good(), path, ": cannot open model config: ", std::strerror(errno));
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  HIPPO_CHECK(!in.bad(), path, ": cannot read model config");
  return from_json(parse_json_strict(text, path), path);
}

void ModelConfig::validate(const std::string& source) const {
  // The bounds keep every size product in 64 bits and every count in an int; what fits in
  // memory is checked separately (models/memory_check.h) before anything is allocated.
  auto in_range = [&](const char* name, int v, int lo, int hi) {
    HIPPO_CHECK(v >= lo && v <= hi, source, ": field '", name, "' must be in ", lo, "..", hi,
                ", got ", v);
  };
  in_range("vocab_size", vocab_size, 1, kMaxVocab);
  in_range("d_model", d_model, 1, kMaxDModel);
  in_range("n_layer", n_layer, 1, kMaxLayers);
  in_range("d_state", d_state, 2, kMaxDState);
  in_range("head_dim", head_dim, 1, kMaxDModel);
  in_range("attn_heads", attn_heads, 1, kMaxDModel);
  in_range("max_position", max_position, 1, kMaxPosition);
  HIPPO_CHECK(d_state % 2 == 0, source, ": field 'd_state' must be even (N/2 complex modes), got ",
              d_state);
  HIPPO_CHECK(static_cast<int>(mixers.size()) == n_layer, source, ": 'layers' has ", mixers.size(),
              " entries but n_layer is ", n_layer);
  HIPPO_CHECK(rotary_dim >= 0, source, ": field 'rotary_dim' must be >= 0, got ", rotary_dim);
  HIPPO_CHECK(dropout >= 0.0f && dropout < 1.0f, source, ": field 'dropout' must be in [0, 1), got ",
              dropout);
  HIPPO_CHECK(init_std > 0.0f && init_std < 10.0f, source, ": field 'init_std' must be in (0, 10), got ",
              init_std);
  HIPPO_CHECK(discretization == "bilinear" || discretization == "zoh", source,
              ": field 'discretization' must be 'bilinear' or 'zoh', got '", discretization, "'");
  HIPPO_CHECK(ssm_init == "lin" || ssm_init == "inv", source,
              ": field 'ssm_init' must be 'lin' or 'inv', got '", ssm_init, "'");
  bool any_attn = false, any_h3 = false;
  for (auto m : mixers) {
    any_attn |= m == MixerKind::Attention;
    any_h3 |= m == MixerKind::H3 || m == MixerKind::H3NoShift || m == MixerKind::H3NoDiag;
  }
  if (any_attn) {
    HIPPO_CHECK(d_model % attn_heads == 0, source, ": field 'attn_heads' (", attn_heads,
                ") must divide d_model (", d_model, ")");
    int dh = d_model / attn_heads;
    HIPPO_CHECK(rotary_dim <= dh && rotary_dim % 2 == 0, source, ": field 'rotary_dim' (",
                rotary_dim, ") must be even and at most the head size ", dh);
  }
  if (any_h3)
    HIPPO_CHECK(d_model % head_dim == 0, source, ": field 'head_dim' (", head_dim,
                ") must divide d_model (", d_model, ")");
}

int64_t ModelConfig::num_params() const {
  // Mirrors the constructors in nn/ and ssm/ (LanguageModel, Block, H3, Attention, S4DMixer,
  // S4DKernel, ShiftKernel, Linear with bias, LayerNorm); Memory.NumParamsMatchesTheModel
  // holds the two equal for every mixer kind.
  const int64_t d = d_model, M = d_state / 2, N = d_state;
  auto linear = [](int64_t in, int64_t out) { return in * out + out; };
  auto s4d_kernel = [&](int64_t H) { return H * (1 + 6 * M); };  // log_dt, A (re, im), B, C
  int64_t n = static_cast<int64_t>(padded_vocab()) * d + 2 * d;  // embedding (tied head), ln_f
  if (learned_pos) n += static_cast<int64_t>(max_position) * d;
  for (MixerKind m : mixers) {
    n += 4 * d + linear(d, 4 * d) + linear(4 * d, d);  // two LayerNorms, the MLP
    switch (m) {
      case MixerKind::Attention:
        n += linear(d, 3 * d) + linear(d, d);
        break;
      case MixerKind::S4D:
        n += s4d_kernel(d) + d + linear(d, d);
        break;
      case MixerKind::H3:
      case MixerKind::H3NoShift:
      case MixerKind::H3NoDiag: {
        n += 4 * linear(d, d);
        if (m != MixerKind::H3NoShift) n += 2 * d * N + d;  // shift B, C and the skip ssm_k_D
        const int64_t H = d / head_dim;
        if (m != MixerKind::H3NoDiag) n += s4d_kernel(H) + H;  // diagonal kernel and its D
        break;
      }
    }
  }
  return n;
}

json ModelConfig::to_json() const {
  json layers = json::array();
  for (auto m : mixers) layers.push_back(mixer_name(m));
  return {{"vocab_size", vocab_size},   {"d_model", d_model},       {"n_layer", n_layer},
          {"d_state", d_state},         {"head_dim", head_dim},     {"attn_heads", attn_heads},
          {"rotary_dim", rotary_dim},   {"learned_pos", learned_pos},
          {"max_position", max_position}, {"dropout", dropout}, {"init_std", init_std},
          {"discretization", discretization}, {"ssm_init", ssm_init}, {"layers", layers}};
}

}  // namespace hippo
