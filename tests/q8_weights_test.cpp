// q8 weight files (models/q8_weights.h): a file written by save_weights_q8 and memory-mapped by
// load_model_mapped gives the logits of the fp32 model with the same (dequantized) weights, the
// in-memory conversion gives the same model, and corrupt files are refused by name.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"
#include "generate/state_io.h"
#include "models/load.h"
#include "models/q8_weights.h"
#include "test_util.h"

using namespace hippo;
using hippo::test_util::error_of;
using hippo::test_util::TempDir;

namespace {

// d_model 64: the linear and embedding weights are whole blocks of 32. d_model 40: only the
// MLP's second layer (160 inputs) is, the rest must stay fp32.
ModelConfig config(int d) {
  return ModelConfig::from_json(
      {{"vocab_size", 77}, {"d_model", d}, {"n_layer", 3}, {"d_state", 8}, {"attn_heads", 2},
       {"layers", {"h3", "attention", "h3"}}},
      "q8 test");
}

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(static_cast<double>(a[i]) - b[i]));
    den = std::max(den, std::fabs(static_cast<double>(b[i])));
  }
  return num / den;
}

std::vector<int32_t> tokens_for(int n, int V, int seed) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 37 + seed * 11 + 5) % V;
  return t;
}

std::vector<float> forward_logits(LanguageModel& m, const std::vector<int32_t>& tok, int B, int L) {
  const float* lg = m.forward(tok.data(), B, L);
  return {lg, lg + static_cast<int64_t>(B) * L * m.config().padded_vocab()};
}

// Logits of one step per token after a prefill of P tokens (batch 1).
std::vector<float> decode_logits(LanguageModel& m, const std::vector<int32_t>& tok, int P) {
  const int64_t V = m.config().padded_vocab();
  ModelState st = m.new_state(1);
  m.prefill(tok.data(), 1, P, st);
  std::vector<float> out;
  for (size_t t = static_cast<size_t>(P); t < tok.size(); ++t) {
    const float* lg = m.step(&tok[t], st);
    out.insert(out.end(), lg, lg + V);
  }
  return out;
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}
uint64_t header_len(const std::string& bytes) {
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | static_cast<unsigned char>(bytes[i]);
  return hlen;
}
nlohmann::json header_of(const std::string& bytes) {
  return nlohmann::json::parse(bytes.substr(8, header_len(bytes)));
}
std::string with_header(const std::string& bytes, const std::function<void(nlohmann::json&)>& edit) {
  const uint64_t hlen = header_len(bytes);
  nlohmann::json h = header_of(bytes);
  edit(h);
  std::string hs = h.dump();
  while ((8 + hs.size()) % 8) hs += ' ';
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((hs.size() >> (8 * i)) & 0xff);
  return out + hs + bytes.substr(8 + hlen);
}
// Byte offset in the file of element `i` (of `size` bytes) of `tensor`.
size_t offset_of(const std::string& bytes, const std::string& tensor, size_t i, size_t size) {
  const auto h = header_of(bytes);
  return 8 + header_len(bytes) + h[tensor]["data_offsets"][0].get<size_t>() + i * size;
}

}  // namespace

TEST(Q8Weights, FileMatchesFp32ModelWithDequantizedWeights) {
  for (int d : {64, 40}) {
    TempDir dir("q8_test");
    LanguageModel ref(config(d));
    ref.init(3);
    const std::string path = dir.file("w_q8.safetensors");
    save_weights_q8(path, ref);
    round_weights_to_q8(ref);  // the fp32 twin of the q8 file

    std::map<std::string, std::string> meta;
    auto m = load_model_mapped(path, &meta);
    EXPECT_EQ(meta.at("weights"), "q8");
    int q8 = 0;
    for (auto& p : m->params()) {
      const bool want = p.param->accepts_stored && p.param->view().cols % 32 == 0;
      EXPECT_EQ(p.param->has_stored() && p.param->stored.dtype == DType::Q8, want) << p.name;
      q8 += want;
    }
    EXPECT_GT(q8, d == 64 ? 10 : 1);

    const int L = 40;  // more rows than kQ8GemvRows: the prompt path (fp32 x, dequantized W)
    const auto tok = tokens_for(L, 77, 1);
    const double e_fwd = rel_err(forward_logits(*m, tok, 1, L), forward_logits(ref, tok, 1, L));
    EXPECT_LT(e_fwd, 1e-4) << d;
    // Decoding quantizes the activations too: within their rounding of the twin's logits.
    const double e_dec = rel_err(decode_logits(*m, tok, 30), decode_logits(ref, tok, 30));
    EXPECT_LT(e_dec, 3e-2) << d;
    std::printf("  d %d: q8 file vs fp32 twin: forward %.2e, decode %.2e\n", d, e_fwd, e_dec);

    // The in-memory conversion (bench generate --q8) is the same model as the file, bit for
    // bit, in either byte layout (the file's is Rows; Rows4 interleaves four rows, and the
    // vocabulary's 77 rows leave a row-major tail), with the same weights fingerprint.
    for (std::optional<Q8Layout> layout :
         {std::optional<Q8Layout>{}, std::optional(Q8Layout::Rows), std::optional(Q8Layout::Rows4)}) {
      LanguageModel conv(config(d));
      conv.init(3);
      convert_weights_to_q8(conv, layout);
      const auto a = forward_logits(conv, tok, 1, L), b = forward_logits(*m, tok, 1, L);
      for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;
      const auto c = decode_logits(conv, tok, 30), e = decode_logits(*m, tok, 30);
      for (size_t i = 0; i < c.size(); ++i) ASSERT_EQ(c[i], e[i]) << i;
      EXPECT_EQ(weights_fingerprint(conv), weights_fingerprint(*m));
    }
    // Reading a q8 file into fp32 weights is refused by name.
    LanguageModel into(config(d));
    EXPECT_NE(error_of([&] { load_model_weights(path, into); }).find("q8"), std::string::npos);
  }
}

// Rows4 keeps a weight's scales as bf16 exactly when every one is a bf16 value (session 14:
// files written since then; an older file's scales stay fp32), with the Rows layout's bits.
TEST(Q8Weights, RelayoutKeepsBf16ScalesOnlyWhereTheyAreBf16Values) {
  TempDir dir("q8_bf16_scales");
  LanguageModel ref(config(64));
  ref.init(5);
  const std::string path = dir.file("w_q8.safetensors");
  save_weights_q8(path, ref);
  // An "older" file: one scale of the first MLP weight one fp32 ulp off a bf16 value.
  const std::string bytes = read_bytes(path);
  const std::string old_name = "backbone.layers.0.mlp.fc1.weight";
  std::string old_bytes = bytes;
  const size_t at = offset_of(bytes, old_name + kQ8ScaleSuffix, 5, 4);
  float sc;
  std::memcpy(&sc, &bytes[at], 4);
  ASSERT_GT(sc, 0.0f);
  sc = std::nextafter(sc, 1.0f);
  std::memcpy(&old_bytes[at], &sc, 4);
  const std::string old_path = dir.file("old_q8.safetensors");
  write_bytes(old_path, old_bytes);

  const int L = 40;
  const auto tok = tokens_for(L, 77, 2);
  for (const std::string& file : {path, old_path}) {
    auto rows = load_model_mapped(file);
    auto r4 = load_model_mapped(file);
    relayout_q8_weights(*r4, Q8Layout::Rows4);
    int seen = 0;
    for (auto& p : r4->params()) {
      const WeightView& v = p.param->stored;
      if (!p.param->has_stored() || v.dtype != DType::Q8) continue;
      ++seen;
      const bool fp32 = file == old_path && p.name == old_name;
      EXPECT_EQ(v.layout, Q8Layout::Rows4) << p.name;
      EXPECT_EQ(v.scales != nullptr, fp32) << file << " " << p.name;
      EXPECT_EQ(v.scales_bf16 != nullptr, !fp32) << file << " " << p.name;
    }
    EXPECT_GT(seen, 10);
    const auto a = forward_logits(*rows, tok, 1, L), b = forward_logits(*r4, tok, 1, L);
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << file << " " << i;
    const auto c = decode_logits(*rows, tok, 30), e = decode_logits(*r4, tok, 30);
    for (size_t i = 0; i < c.size(); ++i) ASSERT_EQ(c[i], e[i]) << file << " " << i;
    EXPECT_EQ(weights_fingerprint(*rows), weights_fingerprint(*r4)) << file;
    // Back to Rows: the scales widen to fp32 again, same bits.
    relayout_q8_weights(*r4, Q8Layout::Rows);
    for (auto& p : r4->params()) {
      if (p.param->has_stored() && p.param->stored.dtype == DType::Q8) {
        EXPECT_TRUE(p.param->stored.scales && !p.param->stored.scales_bf16) << p.name;
      }
    }
    const auto g = decode_logits(*r4, tok, 30);
    for (size_t i = 0; i < c.size(); ++i) ASSERT_EQ(c[i], g[i]) << file << " " << i;
  }
}

TEST(Q8Weights, CorruptFilesAreRefusedByName) {
  TempDir dir("q8_test");
  LanguageModel src(config(64));
  src.init(2);
  const std::string good = dir.file("good.safetensors");
  save_weights_q8(good, src);
  const std::string bytes = read_bytes(good);
  const std::string fc = "backbone.layers.0.mlp.fc1.weight", sc = fc + ".q8_scale";
  auto expect_refused = [&](const std::string& name, const std::string& content,
                            const std::vector<std::string>& parts) {
    const std::string f = dir.file(name);
    write_bytes(f, content);
    const std::string e = error_of([&] { load_model_mapped(f); });
    ASSERT_FALSE(e.empty()) << name << " was accepted";
    EXPECT_NE(e.find(f), std::string::npos) << e;
    for (auto& p : parts) EXPECT_NE(e.find(p), std::string::npos) << name << ": " << e;
  };
  expect_refused("noscale.safetensors", with_header(bytes, [&](nlohmann::json& j) { j.erase(sc); }),
                 {"'" + sc + "'", "missing"});
  expect_refused("scaleshape.safetensors", with_header(bytes, [&](nlohmann::json& j) {
                   auto s = j[sc]["shape"];
                   j[sc]["shape"] = {s[1], s[0]};
                 }), {"'" + sc + "'", "shape"});
  std::string b = bytes;
  b[offset_of(bytes, fc, 17, 1)] = static_cast<char>(-128);
  expect_refused("m128.safetensors", b, {"'" + fc + "'", "-128"});
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), -0.5f}) {
    b = bytes;
    std::memcpy(&b[offset_of(bytes, sc, 3, 4)], &bad, 4);
    expect_refused("badscale.safetensors", b, {"'" + sc + "'"});
  }
  EXPECT_NO_THROW(load_model_mapped(good));
}
