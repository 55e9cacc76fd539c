#include "models/config.h"

#include <fstream>
#include <set>

#include "core/error.h"

namespace hippo {

using nlohmann::json;

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

template <typename T>
void read_field(const json& j, const char* key, T& out, const std::string& source) {
  if (!j.contains(key)) return;
  try {
    out = j.at(key).get<T>();
  } catch (const json::exception&) {
    fail(source, ": field '", key, "' has the wrong type (got ", j.at(key).dump(), ")");
  }
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& j, const std::string& source) {
  HIPPO_CHECK(j.is_object(), source, ": model config must be a JSON object");
  static const std::set<std::string> known = {
      "vocab_size", "d_model",    "n_layer",      "d_state",  "head_dim",
      "attn_heads", "rotary_dim", "learned_pos",  "max_position", "dropout",
      "discretization", "ssm_init", "layers", "mixer", "attn_layer_idx"};
  for (auto& [k, v] : j.items())
    HIPPO_CHECK(known.count(k), source, ": unknown field '", k, "'");
  for (const char* req : {"vocab_size", "d_model", "n_layer"})
    HIPPO_CHECK(j.contains(req), source, ": missing field '", req, "'");
  ModelConfig c;
  read_field(j, "vocab_size", c.vocab_size, source);
  read_field(j, "d_model", c.d_model, source);
  read_field(j, "n_layer", c.n_layer, source);
  read_field(j, "d_state", c.d_state, source);
  read_field(j, "head_dim", c.head_dim, source);
  read_field(j, "attn_heads", c.attn_heads, source);
  read_field(j, "rotary_dim", c.rotary_dim, source);
  read_field(j, "learned_pos", c.learned_pos, source);
  read_field(j, "max_position", c.max_position, source);
  read_field(j, "dropout", c.dropout, source);
  read_field(j, "discretization", c.discretization, source);
  read_field(j, "ssm_init", c.ssm_init, source);
  HIPPO_CHECK(c.n_layer > 0 && c.n_layer <= 1024, source, ": field 'n_layer' must be in 1..1024, got ",
              c.n_layer);
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
    read_field(j, "mixer", def, source);
    c.mixers.assign(c.n_layer, parse_mixer(def, source + ": field 'mixer'"));
    if (j.contains("attn_layer_idx")) {
      HIPPO_CHECK(j["attn_layer_idx"].is_array(), source, ": field 'attn_layer_idx' must be an array");
      for (auto& v : j["attn_layer_idx"]) {
        HIPPO_CHECK(v.is_number_integer(), source, ": attn_layer_idx entries must be integers");
        int i = v.get<int>();
        HIPPO_CHECK(i >= 0 && i < c.n_layer, source, ": attn_layer_idx entry ", i,
                    " is outside 0..", c.n_layer - 1);
        c.mixers[i] = MixerKind::Attention;
      }
    }
  }
  c.validate(source);
  return c;
}

ModelConfig ModelConfig::load(const std::string& path) {
  std::ifstream in(path);
  HIPPO_CHECK(in.good(), path, ": cannot open model config");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  return from_json(j, path);
}

void ModelConfig::validate(const std::string& source) const {
  auto positive = [&](const char* name, int v) {
    HIPPO_CHECK(v > 0, source, ": field '", name, "' must be positive, got ", v);
  };
  positive("vocab_size", vocab_size);
  positive("d_model", d_model);
  positive("n_layer", n_layer);
  positive("d_state", d_state);
  positive("head_dim", head_dim);
  positive("attn_heads", attn_heads);
  positive("max_position", max_position);
  HIPPO_CHECK(d_state % 2 == 0, source, ": field 'd_state' must be even (N/2 complex modes), got ",
              d_state);
  HIPPO_CHECK(static_cast<int>(mixers.size()) == n_layer, source, ": 'layers' has ", mixers.size(),
              " entries but n_layer is ", n_layer);
  HIPPO_CHECK(rotary_dim >= 0, source, ": field 'rotary_dim' must be >= 0, got ", rotary_dim);
  HIPPO_CHECK(dropout >= 0.0f && dropout < 1.0f, source, ": field 'dropout' must be in [0, 1), got ",
              dropout);
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

json ModelConfig::to_json() const {
  json layers = json::array();
  for (auto m : mixers) layers.push_back(mixer_name(m));
  return {{"vocab_size", vocab_size},   {"d_model", d_model},       {"n_layer", n_layer},
          {"d_state", d_state},         {"head_dim", head_dim},     {"attn_heads", attn_heads},
          {"rotary_dim", rotary_dim},   {"learned_pos", learned_pos},
          {"max_position", max_position}, {"dropout", dropout},
          {"discretization", discretization}, {"ssm_init", ssm_init}, {"layers", layers}};
}

}  // namespace hippo
