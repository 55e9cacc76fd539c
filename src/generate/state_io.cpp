#include "generate/state_io.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

#include "core/error.h"
#include "data/hash.h"
#include "io/output_path.h"
#include "io/run_dir.h"
#include "io/safetensors.h"
#include "models/load.h"
#include "nn/attention.h"
#include "nn/h3.h"
#include "nn/s4d_mixer.h"

namespace hippo {

namespace {

constexpr const char* kFormat = "hippo-state-v2";
constexpr const char* kFormatPrefix = "hippo-state-v";

constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull, kP2 = 0xC2B2AE3D27D4EB4Full;

uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xFF51AFD7ED558CCDull;
  k ^= k >> 33;
  k *= 0xC4CEB9FE1A85EC53ull;
  return k ^ (k >> 33);
}

uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

nlohmann::json identity_json(const ModelConfig& cfg) {
  nlohmann::json j = cfg.to_json();
  j.erase("dropout");
  j.erase("ssm_init");
  return j;
}

// Copies rows of `row` elements: out row b*copies+j = in row b, for B rows.
template <typename T>
std::vector<T> repeat_rows(const std::vector<T>& in, int B, int copies) {
  if (in.empty()) return {};
  const size_t row = in.size() / static_cast<size_t>(B);
  std::vector<T> out(in.size() * static_cast<size_t>(copies));
  for (int b = 0; b < B; ++b)
    for (int j = 0; j < copies; ++j)
      std::copy_n(in.data() + b * row, row, out.data() + (static_cast<size_t>(b) * copies + j) * row);
  return out;
}

std::unique_ptr<MixerState> repeat_layer(const MixerState& m, int copies, size_t layer) {
  if (auto* h = dynamic_cast<const H3State*>(&m)) {
    auto o = std::make_unique<H3State>();
    o->B = h->B * copies;
    o->shift = repeat_rows(h->shift, h->B, copies);
    o->shift_ring = repeat_rows(h->shift_ring, h->B, copies);
    o->shift_n = h->shift_n;
    o->shift_pos = h->shift_pos;
    o->shift_age = h->shift_age;
    o->shift_current = h->shift_current;
    o->shift_dynamics = h->shift_dynamics;  // immutable, shared
    o->diag = repeat_rows(h->diag, h->B, copies);
    return o;
  }
  if (auto* s = dynamic_cast<const S4DState*>(&m)) {
    auto o = std::make_unique<S4DState>();
    o->B = s->B * copies;
    o->x = repeat_rows(s->x, s->B, copies);
    return o;
  }
  if (auto* c = dynamic_cast<const AttentionCache*>(&m)) {
    auto o = std::make_unique<AttentionCache>();
    o->batch = c->batch * copies;
    o->len = c->len;
    o->capacity = c->capacity;
    o->dtype = c->dtype;
    o->k = repeat_rows(c->k, c->batch, copies);
    o->v = repeat_rows(c->v, c->batch, copies);
    o->k16 = repeat_rows(c->k16, c->batch, copies);
    o->v16 = repeat_rows(c->v16, c->batch, copies);
    o->k8 = repeat_rows(c->k8, c->batch, copies);
    o->v8 = repeat_rows(c->v8, c->batch, copies);
    o->ks = repeat_rows(c->ks, c->batch, copies);
    o->vs = repeat_rows(c->vs, c->batch, copies);
    return o;
  }
  fail("state of layer ", layer, " is of a kind that cannot be copied or saved");
}

int64_t meta_int(const SafeTensors& st, const std::string& key, const std::string& path) {
  auto it = st.metadata.find(key);
  HIPPO_CHECK(it != st.metadata.end(), path, ": state metadata \"", key, "\" is missing");
  try {
    size_t used = 0;
    const long long v = std::stoll(it->second, &used);
    HIPPO_CHECK(used == it->second.size(), path, ": state metadata \"", key,
                "\" is not an integer: ", it->second);
    return v;
  } catch (const std::logic_error&) {
    fail(path, ": state metadata \"", key, "\" is not an integer: ", it->second);
  }
}

// Copies a stored tensor of exactly `shape` into dst (floats).
void fill_from(const SafeTensors& st, const std::string& name, const Shape& shape, float* dst,
               const std::string& path) {
  HIPPO_CHECK(st.has(name), path, ": state tensor \"", name, "\" is missing");
  const Tensor& t = st.tensors.at(name);
  HIPPO_CHECK(t.shape() == shape, path, ": state tensor \"", name, "\" has shape ",
              shape_str(t.shape()), ", expected ", shape_str(shape));
  if (t.numel() > 0) std::memcpy(dst, t.data(), sizeof(float) * static_cast<size_t>(t.numel()));
}

// One tensor of a saved state and the part of a layer's state it holds.
// ShiftRing, ShiftAge: the shift SSM's ring of inputs and its age (H3State), optional when
// loading (states saved before the ring existed have neither).
// KScale, VScale: a q8 KV cache's row scales (the K and V tensors then hold its int8 values).
enum class Part { Shift, ShiftRing, ShiftAge, Diag, X, K, V, KScale, VScale };
struct StatePart {
  std::string name;
  Shape shape;
  size_t layer;
  Part part;
};

// The tensors a state of batch B at position pos has, in layer order, from the model alone:
// what save writes and load requires (one list for both, so they cannot drift apart).
std::vector<StatePart> state_parts(const LanguageModel& model, int64_t B, int64_t pos,
                                   const std::string& what) {
  std::vector<StatePart> parts;
  const auto& blocks = model.blocks();
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string pre = "layers." + std::to_string(i) + ".";
    const Mixer& mixer = *blocks[i]->mixer;
    if (auto* h = dynamic_cast<const H3*>(&mixer)) {
      const int64_t d = h->d(), N = h->d_state(), p = h->head_dim(), H = h->heads();
      if (h->use_shift()) {
        parts.push_back({pre + "shift", {B, d, N}, i, Part::Shift});
        parts.push_back({pre + "shift_ring", {B, d, N}, i, Part::ShiftRing});
        parts.push_back({pre + "shift_age", {1}, i, Part::ShiftAge});
      }
      if (h->use_diag()) parts.push_back({pre + "diag", {B, p, p, H, h->diag_->M(), 2}, i, Part::Diag});
    } else if (auto* x = dynamic_cast<const S4DMixer*>(&mixer)) {
      parts.push_back({pre + "x", {B, x->d(), x->kernel_->M(), 2}, i, Part::X});
    } else if (auto* at = dynamic_cast<const Attention*>(&mixer)) {
      parts.push_back({pre + "k", {B, at->heads(), pos, at->head_dim()}, i, Part::K});
      parts.push_back({pre + "v", {B, at->heads(), pos, at->head_dim()}, i, Part::V});
      if (at->kv_cache() == KvCacheDType::Q8) {
        parts.push_back({pre + "k_scale", {B, at->heads(), pos}, i, Part::KScale});
        parts.push_back({pre + "v_scale", {B, at->heads(), pos}, i, Part::VScale});
      }
    } else {
      fail(what, ": layer ", i, " has a state of a kind that cannot be saved or loaded");
    }
  }
  return parts;
}

// The storage of a contiguous part (not K/V, which the cache keeps at its capacity stride).
template <typename S>
S& layer_as(MixerState& m, size_t layer, const std::string& what) {
  auto* s = dynamic_cast<S*>(&m);
  HIPPO_CHECK(s != nullptr, what, ": the state of layer ", layer,
              " is not of the kind the model's layer makes");
  return *s;
}

template <typename T>
float* part_data(std::vector<T>& v, const Shape& shape, size_t layer, const std::string& what) {
  int64_t n = 1;
  for (int64_t e : shape) n *= e;
  HIPPO_CHECK(static_cast<int64_t>(v.size() * sizeof(T) / sizeof(float)) == n, what,
              ": the state of layer ", layer, " holds ", v.size() * sizeof(T) / sizeof(float),
              " values, its shape ", shape_str(shape), " needs ", n);
  return reinterpret_cast<float*>(v.data());
}

float* contiguous_part(MixerState& m, const StatePart& p, const std::string& what) {
  switch (p.part) {
    case Part::Shift: return part_data(layer_as<H3State>(m, p.layer, what).shift, p.shape, p.layer, what);
    case Part::Diag: return part_data(layer_as<H3State>(m, p.layer, what).diag, p.shape, p.layer, what);
    case Part::X: return part_data(layer_as<S4DState>(m, p.layer, what).x, p.shape, p.layer, what);
    default: fail(what, ": part ", p.name, " is not contiguous");
  }
}

// The KV cache dtype the model's attention layers make for new states, empty without any.
std::string model_kv_cache(const LanguageModel& model) {
  for (const auto& b : model.blocks())
    if (auto* at = dynamic_cast<const Attention*>(b->mixer.get())) return kv_cache_name(at->kv_cache());
  return "";
}

// The KV cache dtype of a state's attention layers ("fp32" | "bf16" | "q8"), empty without any.
std::string kv_cache_of(const ModelState& s) {
  for (const auto& l : s.layers)
    if (auto* c = dynamic_cast<const AttentionCache*>(l.get())) return kv_cache_name(c->dtype);
  return "";
}

// Bytes of one layer's state.
int64_t layer_bytes(const MixerState& m) {
  if (auto* h = dynamic_cast<const H3State*>(&m))
    return static_cast<int64_t>((h->shift.size() + h->shift_ring.size()) * sizeof(float) +
                                h->diag.size() * sizeof(h->diag[0]));
  if (auto* x = dynamic_cast<const S4DState*>(&m))
    return static_cast<int64_t>(x->x.size() * sizeof(x->x[0]));
  if (auto* c = dynamic_cast<const AttentionCache*>(&m))
    return c->bytes();
  return 0;
}

}  // namespace

std::string state_checksum(const std::map<std::string, std::string>& metadata,
                           std::vector<NamedTensor> tensors) {
  uint64_t h = kFnvOffset;
  for (const auto& [k, v] : metadata) {
    if (k == "checksum") continue;
    h = fnv1a64(k + '\0' + v + '\0', h);
  }
  std::sort(tensors.begin(), tensors.end(),
            [](const NamedTensor& a, const NamedTensor& b) { return a.name < b.name; });
  for (const NamedTensor& t : tensors) {
    std::string dims;
    for (size_t i = 0; i < t.tensor->shape().size(); ++i) {
      if (i > 0) dims += ',';
      dims += std::to_string(t.tensor->shape()[i]);
    }
    h = fnv1a64(t.name + '\0' + "F32" + '\0' + dims + '\0', h);
    h = state_data_hash(t.tensor->data(), sizeof(float) * static_cast<size_t>(t.tensor->numel()), h);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

uint64_t state_data_hash(const void* data, size_t n, uint64_t seed) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  uint64_t v[4];
  for (int j = 0; j < 4; ++j) v[j] = seed ^ (static_cast<uint64_t>(j + 1) * kP1);
  size_t i = 0, w = 0;
  auto mix = [&v](size_t lane, uint64_t x) { v[lane] = rotl64(v[lane] ^ (x * kP2), 31) * kP1; };
  for (; i + 32 <= n; i += 32, w += 4)
    for (int j = 0; j < 4; ++j) {
      uint64_t x;
      std::memcpy(&x, p + i + 8 * j, 8);
      mix(static_cast<size_t>(j), x);
    }
  for (; i + 8 <= n; i += 8, ++w) {
    uint64_t x;
    std::memcpy(&x, p + i, 8);
    mix(w & 3, x);
  }
  if (i < n) {
    uint64_t x = 0;
    std::memcpy(&x, p + i, n - i);
    mix(w & 3, x);
  }
  uint64_t h = seed ^ (static_cast<uint64_t>(n) * kP1);
  for (int j = 0; j < 4; ++j) h = (h ^ fmix64(v[j])) * kP2;
  return fmix64(h);
}

int64_t state_bytes(const ModelState& s) {
  int64_t total = 0;
  for (const auto& l : s.layers) total += layer_bytes(*l);
  return total;
}

uint64_t config_hash(const ModelConfig& cfg) { return fnv1a64(identity_json(cfg).dump()); }

uint64_t weights_fingerprint(const LanguageModel& model) {
  uint64_t h = kFnvOffset;
  for (const auto& p : model.params()) {
    h = fnv1a64(p.name, h);
    const Tensor& t = p.param->value;
    const int64_t n = t.numel(), stride = std::max<int64_t>(1, n / 4096);
    if (p.param->has_stored()) {  // e.g. bf16 inference weights: different weights, different states
      const WeightView w = p.param->stored;
      const int sz = dtype_size(w.dtype);
      // Elements in row-major order whatever the layout (core/weight.h Q8Layout, Bf16Layout),
      // so that a model in memory and the same model from a file give one fingerprint.
      const bool q8 = w.dtype == DType::Q8;
      const int64_t rows8 = w.dtype == DType::BF16 ? bf16_data(w).rows8 : 0;
      for (int64_t i = 0; i < n; i += stride) {
        const int64_t at = q8 ? q8_value_offset(w, i / w.cols, i % w.cols)
                              : bf16_offset(i / w.cols, i % w.cols, w.cols, rows8);
        h = fnv1a64(static_cast<const char*>(w.data) + at * sz, static_cast<size_t>(sz), h);
      }
      if (q8) {  // the scales are weights too: as fp32 whichever type holds them
        const int64_t nb = w.cols / kQ8Block;
        for (int64_t i = 0; i < n / kQ8Block; i += stride) {
          const float sc = q8_scale(w, i / nb, i % nb);
          h = fnv1a64(&sc, sizeof(float), h);
        }
      }
      continue;
    }
    for (int64_t i = 0; i < n; i += stride) h = fnv1a64(t.data() + i, sizeof(float), h);
  }
  return h;
}

ModelState clone_state(const ModelState& s) { return repeat_state(s, 1); }

ModelState repeat_state(const ModelState& s, int copies) {
  HIPPO_CHECK(copies >= 1, "repeat_state: copies must be >= 1, got ", copies);
  ModelState o;
  o.batch = s.batch * copies;
  o.position = s.position;
  for (size_t i = 0; i < s.layers.size(); ++i)
    o.layers.push_back(repeat_layer(*s.layers[i], copies, i));
  return o;
}

void reserve_state(const LanguageModel& model, ModelState& s, int64_t total_tokens) {
  HIPPO_CHECK(s.layers.size() == model.blocks().size(), "reserve_state: the state has ",
              s.layers.size(), " layers, the model ", model.blocks().size());
  for (size_t i = 0; i < s.layers.size(); ++i) {
    auto* c = dynamic_cast<AttentionCache*>(s.layers[i].get());
    if (c == nullptr || c->capacity >= total_tokens) continue;
    const auto& at = dynamic_cast<const Attention&>(*model.blocks()[i]->mixer);
    c->grow(at.heads(), at.head_dim(), total_tokens);
  }
}

namespace {

// The safetensors bytes of a state (see the format in state_io.h).
std::string state_to_bytes(const LanguageModel& model, const ModelState& s, const float* logits) {
  const char* what = "save_state";
  const ModelConfig& cfg = model.config();
  HIPPO_CHECK(static_cast<int>(s.layers.size()) == cfg.n_layer, "save_state: the state has ",
              s.layers.size(), " layers, the model ", cfg.n_layer);
  const std::vector<StatePart> parts = state_parts(model, s.batch, s.position, what);
  std::vector<Tensor> keep;  // owns compacted KV caches and views until written
  keep.reserve(parts.size() + 1);
  std::vector<NamedTensor> out;
  for (const StatePart& p : parts) {
    MixerState& m = *s.layers[p.layer];  // read only: views for the writer
    if (p.part == Part::Shift || p.part == Part::ShiftRing || p.part == Part::ShiftAge) {
      // As s (whichever form the state keeps), the ring newest first, the age.
      const auto& h3 = dynamic_cast<const H3&>(*model.blocks()[p.layer]->mixer);
      const auto& h = layer_as<H3State>(m, p.layer, what);
      Tensor t = Tensor::zeros(p.shape);
      if (p.part == Part::Shift)
        h3.shift_state_of(h, t.data());
      else if (p.part == Part::ShiftRing)
        h3.shift_ring_of(h, t.data());
      else
        t.data()[0] = static_cast<float>(h.shift_age);
      keep.push_back(std::move(t));
    } else if (p.part == Part::K || p.part == Part::V) {
      const auto& c = layer_as<AttentionCache>(m, p.layer, what);
      HIPPO_CHECK(c.len == s.position, "save_state: layer ", p.layer, " caches ", c.len,
                  " tokens but the state is at position ", s.position);
      HIPPO_CHECK(c.batch == s.batch, "save_state: layer ", p.layer, " has batch ", c.batch,
                  ", the state ", s.batch);
      // The file's tensors follow the model's dtype (a q8 cache adds its scales).
      const auto& at = dynamic_cast<const Attention&>(*model.blocks()[p.layer]->mixer);
      HIPPO_CHECK(c.dtype == at.kv_cache(), "save_state: layer ", p.layer, " has a ",
                  kv_cache_name(c.dtype), " KV cache but the model now makes ",
                  kv_cache_name(at.kv_cache()), " ones");
      // Stored as fp32 either way (a bf16 cache widens exactly; a q8 cache's int8 values are
      // whole numbers, their scales in k_scale / v_scale); "kv_cache" says which.
      const int64_t dh = p.shape[3], len = c.len;
      Tensor t = Tensor::zeros(p.shape);
      for (int64_t bh = 0; bh < p.shape[0] * p.shape[1]; ++bh)
        if (c.dtype == KvCacheDType::Q8)
          c.read_q8_rows(p.part == Part::V, bh, static_cast<int>(dh), t.data() + bh * len * dh,
                         nullptr);
        else
          c.read_rows(p.part == Part::V, bh, static_cast<int>(dh), t.data() + bh * len * dh);
      keep.push_back(std::move(t));
    } else if (p.part == Part::KScale || p.part == Part::VScale) {
      const auto& c = layer_as<AttentionCache>(m, p.layer, what);
      HIPPO_CHECK(c.dtype == KvCacheDType::Q8, "save_state: layer ", p.layer, " has a ",
                  kv_cache_name(c.dtype), " KV cache, the model makes q8 ones");
      const int64_t len = c.len,
                    dh = dynamic_cast<const Attention&>(*model.blocks()[p.layer]->mixer).head_dim();
      Tensor t = Tensor::zeros(p.shape);
      for (int64_t bh = 0; bh < p.shape[0] * p.shape[1]; ++bh)
        c.read_q8_rows(p.part == Part::VScale, bh, static_cast<int>(dh), nullptr,
                       t.data() + bh * len);
      keep.push_back(std::move(t));
    } else {
      keep.push_back(Tensor::borrow(contiguous_part(m, p, what), p.shape));
    }
    out.push_back({p.name, &keep.back()});
  }
  if (logits != nullptr) {
    keep.push_back(Tensor::borrow(const_cast<float*>(logits), {s.batch, cfg.padded_vocab()}));
    out.push_back({"logits", &keep.back()});
  }
  std::map<std::string, std::string> meta = {
      {"format", kFormat},
      {"config", identity_json(cfg).dump()},
      {"config_hash", std::to_string(config_hash(cfg))},
      {"weights_fingerprint", std::to_string(weights_fingerprint(model))},
      {"position", std::to_string(s.position)},
      {"batch", std::to_string(s.batch)}};
  if (const std::string kv = kv_cache_of(s); !kv.empty()) meta["kv_cache"] = kv;
  meta["checksum"] = state_checksum(meta, out);
  return safetensors_bytes(out, meta);
}

// A state from a parsed state file; `path` names it in messages.
ModelState state_from(const SafeTensors& st, const LanguageModel& model,
                      std::vector<float>* logits, const std::string& path) {
  auto fmt = st.metadata.find("format");
  HIPPO_CHECK(fmt != st.metadata.end() && fmt->second.rfind(kFormatPrefix, 0) == 0, path,
              ": not a hippo generation state (metadata \"format\" should be \"", kFormat, "\")");
  HIPPO_CHECK(fmt->second != "hippo-state-v1", path,
              ": a hippo-state-v1 file, written before states carried a checksum: it cannot be "
              "verified, so it is not loaded; make the state again with --save-state (this hippo "
              "writes ", kFormat, ")");
  HIPPO_CHECK(fmt->second == kFormat, path, ": state format \"", fmt->second,
              "\" is not supported (this hippo reads ", kFormat, ")");
  // The checksum first: whatever else the file says is only trusted once it matches.
  auto sum = st.metadata.find("checksum");
  HIPPO_CHECK(sum != st.metadata.end(), path, ": state metadata \"checksum\" is missing");
  std::vector<NamedTensor> sums;
  for (const auto& [name, t] : st.tensors) {
    HIPPO_CHECK(st.source_dtype.at(name) == "F32", path, ": state tensor \"", name,
                "\" is stored as ", st.source_dtype.at(name), ", states are F32");
    sums.push_back({name, &t});
  }
  const std::string computed = state_checksum(st.metadata, sums);
  HIPPO_CHECK(computed == sum->second, path, ": checksum mismatch (stored ", sum->second,
              ", computed ", computed, "): the state file is corrupt or was modified");

  const ModelConfig& cfg = model.config();
  const std::string want_hash = std::to_string(config_hash(cfg));
  auto hash = st.metadata.find("config_hash");
  HIPPO_CHECK(hash != st.metadata.end(), path, ": state metadata \"config_hash\" is missing");
  if (hash->second != want_hash) {
    // Name the first config field that differs, if the stored config is readable.
    std::string diff;
    auto c = st.metadata.find("config");
    if (c != st.metadata.end()) {
      const auto stored = nlohmann::json::parse(c->second, nullptr, false);
      const auto mine = identity_json(cfg);
      if (stored.is_object())
        for (auto it = mine.begin(); it != mine.end() && diff.empty(); ++it)
          if (!stored.contains(it.key()) || stored[it.key()] != it.value())
            diff = str("; \"", it.key(), "\" is ",
                       stored.contains(it.key()) ? stored[it.key()].dump() : "missing",
                       " in the state, ", it.value().dump(), " in the model");
    }
    fail(path, ": the state was made for a different model config (config_hash ", hash->second,
         ", this model's is ", want_hash, diff, ")");
  }
  auto wf = st.metadata.find("weights_fingerprint");
  HIPPO_CHECK(wf != st.metadata.end() && wf->second == std::to_string(weights_fingerprint(model)),
              path, ": the state was made with different model weights (weights_fingerprint)");
  const int64_t B = meta_int(st, "batch", path), pos = meta_int(st, "position", path);
  HIPPO_CHECK(B >= 1 && B <= INT_MAX, path, ": state metadata \"batch\" = ", B, " is invalid");
  HIPPO_CHECK(pos >= 0 && pos <= INT_MAX, path, ": state metadata \"position\" = ", pos,
              " is invalid");
  HIPPO_CHECK(!cfg.learned_pos || pos <= cfg.max_position, path, ": state metadata \"position\" = ",
              pos, " is beyond the model's max_position ", cfg.max_position);

  // The tensors a state of batch B at this position has; all must be in the file with exactly
  // these shapes (so the claimed batch and position are backed by real data) before the
  // batch-B state is allocated.
  // A state resumes with the KV cache it was made with: a bf16 or q8 cache's keys are rounded,
  // so loading them into an fp32 cache (or fp32 keys into a bf16 one) would not continue the
  // same sequence of logits. States written before the dtype was recorded are fp32. Checked
  // before the tensors, which differ by dtype (a q8 cache's scales).
  if (const std::string mine = model_kv_cache(model); !mine.empty()) {
    auto kv = st.metadata.find("kv_cache");
    const std::string theirs = kv == st.metadata.end() ? "fp32" : kv->second;
    HIPPO_CHECK(theirs == mine, path, ": the state was saved with a ", theirs,
                " KV cache but the model runs a ", mine, " KV cache; load the model with the "
                "same KV cache dtype (--kv-cache ", theirs, ", LoadOptions::kv_cache = \"", theirs,
                "\")");
  }
  std::vector<StatePart> parts = state_parts(model, B, pos, path);
  // A layer's shift ring and age come as a pair; states saved before them have neither (they
  // load with their s, and the ring takes over N steps later).
  for (const StatePart& p : parts)
    if (p.part == Part::ShiftRing) {
      const std::string age = p.name.substr(0, p.name.size() - 4) + "age";
      HIPPO_CHECK(st.has(p.name) == st.has(age), path, ": state tensor \"",
                  st.has(p.name) ? age : p.name, "\" is missing (\"", p.name, "\" and \"", age,
                  "\" come together)");
    }
  std::erase_if(parts, [&](const StatePart& p) {
    return (p.part == Part::ShiftRing || p.part == Part::ShiftAge) && !st.has(p.name);
  });
  std::map<std::string, Shape> want;
  for (const StatePart& p : parts) want[p.name] = p.shape;
  if (logits != nullptr || st.has("logits")) want["logits"] = {B, cfg.padded_vocab()};
  for (const auto& [name, shape] : want) {
    if (name == "logits" && !st.has(name))
      fail(path, ": the state has no \"logits\" to resume from");
    HIPPO_CHECK(st.has(name), path, ": state tensor \"", name, "\" is missing");
    const Shape& got = st.tensors.at(name).shape();
    HIPPO_CHECK(got == shape, path, ": state tensor \"", name, "\" has shape ", shape_str(got),
                ", but batch ", B, " and position ", pos, " (the metadata) need ", shape_str(shape));
  }
  for (const auto& [name, t] : st.tensors)
    HIPPO_CHECK(want.count(name), path, ": unexpected state tensor \"", name, "\"");
  // Finite numbers only: a NaN in a state or its logits would spread into every later token.
  for (const auto& [name, t] : st.tensors) check_finite(t.data(), t.numel(), name, path);

  ModelState s = model.new_state(static_cast<int>(B));
  s.position = pos;
  std::vector<float> ring;
  for (const StatePart& p : parts) {
    MixerState& m = *s.layers[p.layer];
    if (p.part == Part::Shift) {
      fill_from(st, p.name, p.shape, contiguous_part(m, p, path), path);
      layer_as<H3State>(m, p.layer, path).shift_age = 0;  // s is the state until a ring comes
    } else if (p.part == Part::ShiftRing) {
      ring.resize(static_cast<size_t>(st.tensors.at(p.name).numel()));
      fill_from(st, p.name, p.shape, ring.data(), path);
    } else if (p.part == Part::ShiftAge) {  // after its ring (state_parts' order)
      const auto& h3 = dynamic_cast<const H3&>(*model.blocks()[p.layer]->mixer);
      const float age = st.tensors.at(p.name).data()[0];
      HIPPO_CHECK(age >= 0 && age <= h3.d_state() && age == std::floor(age), path,
                  ": state tensor \"", p.name, "\" = ", age, " is not a whole number of inputs in [0, ",
                  h3.d_state(), "]");
      h3.set_shift_ring(layer_as<H3State>(m, p.layer, path), ring.data(), static_cast<int>(age));
    } else if (p.part == Part::KScale || p.part == Part::VScale) {
      continue;  // read with their K / V
    } else if (p.part == Part::K || p.part == Part::V) {
      auto& c = layer_as<AttentionCache>(m, p.layer, path);
      if (c.capacity < pos) c.grow(static_cast<int>(p.shape[1]), static_cast<int>(p.shape[3]), pos);
      c.len = static_cast<int>(pos);
      std::vector<float> rows(static_cast<size_t>(st.tensors.at(p.name).numel()));
      fill_from(st, p.name, p.shape, rows.data(), path);
      const int64_t dh = p.shape[3];
      if (c.dtype == KvCacheDType::Q8) {  // int8 values as whole numbers, and their scales
        const std::string sname = p.name + "_scale";
        const float* sc = st.tensors.at(sname).data();
        for (int64_t i = 0; i < static_cast<int64_t>(rows.size()); ++i)
          HIPPO_CHECK(rows[i] >= -127.0f && rows[i] <= 127.0f && rows[i] == std::floor(rows[i]),
                      path, ": state tensor \"", p.name, "\" holds ", rows[i], " at element ", i,
                      ", but a q8 KV cache holds whole numbers in [-127, 127]");
        for (int64_t i = 0; i < st.tensors.at(sname).numel(); ++i)
          HIPPO_CHECK(sc[i] >= 0.0f, path, ": state tensor \"", sname, "\" holds ", sc[i],
                      " at element ", i, ", but scales are >= 0");
        for (int64_t bh = 0; bh < p.shape[0] * p.shape[1]; ++bh)
          c.write_q8_rows(p.part == Part::V, bh, static_cast<int>(dh), rows.data() + bh * pos * dh,
                          sc + bh * pos);
        continue;
      }
      for (int64_t bh = 0; bh < p.shape[0] * p.shape[1]; ++bh)
        c.write_rows(p.part == Part::V, bh, static_cast<int>(dh), rows.data() + bh * pos * dh);
    } else {
      fill_from(st, p.name, p.shape, contiguous_part(m, p, path), path);
    }
  }
  if (logits != nullptr) {
    logits->resize(static_cast<size_t>(B * cfg.padded_vocab()));
    fill_from(st, "logits", want.at("logits"), logits->data(), path);
  }
  return s;
}

}  // namespace

void save_state(const std::string& path, const LanguageModel& model, const ModelState& s,
                const float* logits) {
  write_file_atomic(path, state_to_bytes(model, s, logits));
}

std::vector<uint8_t> save_state_bytes(const LanguageModel& model, const ModelState& s,
                                      const float* logits) {
  const std::string bytes = state_to_bytes(model, s, logits);
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

ModelState load_state(const std::string& path, const LanguageModel& model,
                      std::vector<float>* logits) {
  // Reading the file costs what the file is; nothing below allocates by a number the file
  // merely claims before that number is checked against the tensors it really holds.
  return state_from(load_safetensors(path), model, logits, path);
}

ModelState load_state_bytes(std::span<const uint8_t> bytes, const LanguageModel& model,
                            std::vector<float>* logits, const std::string& what) {
  return state_from(parse_safetensors(bytes.data(), bytes.size(), what), model, logits, what);
}

void check_state_output_path(const std::string& out, const std::string& option,
                             const std::vector<std::string>& inputs) {
  check_output_path(out, option, inputs, "a generation state", [](const std::string& path) -> std::string {
    const auto meta = read_safetensors_metadata(path);
    if (!meta) return "is not a hippo state file (not safetensors)";
    auto f = meta->find("format");
    if (f != meta->end() && f->second.rfind("hippo-state-v", 0) == 0) return "";
    return "is not a hippo state file (__metadata__.format " +
           (f == meta->end() ? std::string("missing") : "\"" + f->second + "\"") + ")";
  });
  remove_stale_temp_files_of(out);  // left by a killed earlier save
}

}  // namespace hippo
