// Inference loading (load_model_mapped) and bf16 weights: logits against fp32 twins, fp32 files
// bit-identical to load_model, and files that lie or are cut short refused by name.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"
#include "io/safetensors.h"
#include "models/bf16_weights.h"
#include "models/load.h"
#include "train/checkpoint.h"

using namespace hippo;
using hippo::test_util::error_of;
using hippo::test_util::TempDir;

namespace {

// Widths that give every kernel tail (d = 40 is not a multiple of the 32-wide bf16 chunks).
ModelConfig hybrid_config() {
  return ModelConfig::from_json(
      {{"vocab_size", 77}, {"d_model", 40}, {"n_layer", 3}, {"d_state", 8}, {"attn_heads", 2},
       {"layers", {"h3", "attention", "h3"}}},
      "bf16 test");
}


// max |a - b| / max |b|
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

// Logits of a prefill of `P` tokens, then one step per remaining token, concatenated.
std::vector<float> decode_logits(LanguageModel& m, const std::vector<int32_t>& tok, int B, int L,
                                 int P) {
  const int64_t V = m.config().padded_vocab();
  std::vector<int32_t> prompt;
  for (int b = 0; b < B; ++b)
    prompt.insert(prompt.end(), tok.begin() + b * L, tok.begin() + b * L + P);
  ModelState st = m.new_state(B);
  const float* lg = m.prefill(prompt.data(), B, P, st);
  std::vector<float> out(lg, lg + B * V);
  std::vector<int32_t> next(B);
  for (int t = P; t < L; ++t) {
    for (int b = 0; b < B; ++b) next[b] = tok[b * L + t];
    lg = m.step(next.data(), st);
    out.insert(out.end(), lg, lg + B * V);
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

// The file with its JSON header replaced by edit(header); the data section is kept.
// `misalign` pads the header so the data section starts at an odd byte.
std::string with_header(const std::string& bytes, const std::function<void(nlohmann::json&)>& edit,
                        bool misalign = false) {
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | static_cast<unsigned char>(bytes[i]);
  nlohmann::json h = nlohmann::json::parse(bytes.substr(8, hlen));
  edit(h);
  std::string hs = h.dump();
  while ((8 + hs.size()) % 8 != (misalign ? 1u : 0u)) hs += ' ';
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((hs.size() >> (8 * i)) & 0xff);
  return out + hs + bytes.substr(8 + hlen);
}

}  // namespace

TEST(Bf16Load, Bf16FileMatchesRoundedFp32Model) {
  TempDir dir("bf16_test");
  LanguageModel ref(hybrid_config());
  ref.init(3);
  const std::string path = dir.file("w_bf16.safetensors");
  save_weights_bf16(path, ref);
  round_weights_to_bf16(ref);  // the fp32 twin of the bf16 file

  std::map<std::string, std::string> meta;
  auto m = load_model_mapped(path, &meta);
  EXPECT_EQ(meta.at("format"), "hippo");
  int bf16_params = 0;
  for (auto& p : m->params()) {
    const bool want = p.param->accepts_stored;
    EXPECT_EQ(p.param->stored.dtype == DType::BF16 && p.param->has_stored(), want) << p.name;
    bf16_params += want;
    if (!want) {
      EXPECT_FALSE(p.param->value.owned()) << p.name << " should be used in place";
    }
  }
  EXPECT_GT(bf16_params, 10);

  const int B = 2, L = 24;  // 48 rows: the blocked (large-rows) path
  const auto tok = tokens_for(B * L, 77, 1);
  const double e_fwd = rel_err(forward_logits(*m, tok, B, L), forward_logits(ref, tok, B, L));
  EXPECT_LT(e_fwd, 1e-4);
  // Prefill of 5 tokens (10 rows, small-rows path) then steps of 2 rows.
  const double e_dec = rel_err(decode_logits(*m, tok, B, L, 5), decode_logits(ref, tok, B, L, 5));
  EXPECT_LT(e_dec, 1e-4);
  // Prefill of 20 tokens (40 rows) then steps.
  const double e_dec2 = rel_err(decode_logits(*m, tok, B, L, 20), decode_logits(ref, tok, B, L, 20));
  EXPECT_LT(e_dec2, 1e-4);
  std::printf("  bf16 file vs fp32 model with rounded weights: forward %.2e, decode %.2e / %.2e\n",
              e_fwd, e_dec, e_dec2);

  // The in-memory conversion (bench generate --bf16) gives the same model as the file.
  LanguageModel conv(hybrid_config());
  conv.init(3);
  convert_weights_to_bf16(conv);
  const auto a = forward_logits(conv, tok, B, L), b = forward_logits(*m, tok, B, L);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;
}

TEST(Bf16Load, MappedFp32FileIsBitIdenticalToLoadModel) {
  TempDir dir("bf16_test");
  LanguageModel src(hybrid_config());
  src.init(5);
  const std::string path = dir.file("w.safetensors");
  save_weights(path, src);
  auto copied = load_model(path);
  auto mapped = load_model_mapped(path);
  for (auto& p : mapped->params()) {
    EXPECT_FALSE(p.param->has_stored()) << p.name;
    EXPECT_FALSE(p.param->value.owned()) << p.name << " should be used in place";
  }
  const int B = 2, L = 17;
  const auto tok = tokens_for(B * L, 77, 2);
  const auto a = forward_logits(*copied, tok, B, L), b = forward_logits(*mapped, tok, B, L);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;
  const auto c = decode_logits(*copied, tok, B, L, 6), d = decode_logits(*mapped, tok, B, L, 6);
  for (size_t i = 0; i < c.size(); ++i) ASSERT_EQ(c[i], d[i]) << i;
}

// A valid file whose data section starts at an odd byte: no tensor can be used in place, so
// BF16 weights are copied and F32 ones converted; the logits must not change.
TEST(Bf16Load, MisalignedFileIsCopiedNotMisread) {
  TempDir dir("bf16_test");
  LanguageModel src(hybrid_config());
  src.init(4);
  const std::string good = dir.file("good.safetensors"), odd = dir.file("odd.safetensors");
  save_weights_bf16(good, src);
  write_bytes(odd, with_header(read_bytes(good), [](nlohmann::json&) {}, true));
  auto a = load_model_mapped(good);
  auto b = load_model_mapped(odd);
  for (auto& p : b->params())
    if (!p.param->has_stored()) {
      EXPECT_TRUE(p.param->value.owned()) << p.name << " should be a copy";
    }
  const int B = 1, L = 9;
  const auto tok = tokens_for(B * L, 77, 4);
  const auto x = forward_logits(*a, tok, B, L), y = forward_logits(*b, tok, B, L);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i], y[i]) << i;
}

TEST(Bf16Load, InferenceModelsRefuseTrainingAndSaving) {
  TempDir dir("bf16_test");
  LanguageModel src(hybrid_config());
  src.init(1);
  const std::string path = dir.file("w.safetensors");
  save_weights_bf16(path, src);
  auto m = load_model_mapped(path);
  const auto tok = tokens_for(8, 77, 3);
  m->forward(tok.data(), 1, 8);
  m->loss(tok.data());
  EXPECT_NE(error_of([&] { m->backward(); }).find("inference"), std::string::npos);
  EXPECT_NE(error_of([&] { m->init(1); }).find("inference"), std::string::npos);
  EXPECT_NE(error_of([&] { save_weights(dir.file("x.safetensors"), *m); }).find("bf16"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_model_weights(path, *m); }).find("inference"), std::string::npos);
}

TEST(Bf16Load, LyingOrTruncatedFilesAreRefused) {
  TempDir dir("bf16_test");
  LanguageModel src(hybrid_config());
  src.init(2);
  const std::string good = dir.file("good.safetensors");
  save_weights_bf16(good, src);
  const std::string bytes = read_bytes(good);
  const std::string emb = "backbone.embeddings.word_embeddings.weight";
  auto expect_refused = [&](const std::string& name, const std::string& content,
                            const std::vector<std::string>& parts) {
    const std::string f = dir.file(name);
    write_bytes(f, content);
    const std::string e = error_of([&] { load_model_mapped(f); });
    ASSERT_FALSE(e.empty()) << name << " was accepted";
    EXPECT_NE(e.find(f), std::string::npos) << e;
    for (auto& p : parts) EXPECT_NE(e.find(p), std::string::npos) << name << ": " << e;
  };
  // Cut short: the tensor at the end of the data section runs past the end of the file.
  nlohmann::json h;
  {
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | static_cast<unsigned char>(bytes[i]);
    h = nlohmann::json::parse(bytes.substr(8, hlen));
  }
  std::string last;
  uint64_t last_end = 0;
  for (auto& [k, v] : h.items())
    if (k != "__metadata__" && v["data_offsets"][1].get<uint64_t>() > last_end) {
      last_end = v["data_offsets"][1].get<uint64_t>();
      last = k;
    }
  expect_refused("cut.safetensors", bytes.substr(0, bytes.size() - 6), {"'" + last + "'", "out of range"});
  expect_refused("cut_header.safetensors", bytes.substr(0, 100), {"runs past the end"});
  expect_refused("empty.safetensors", "", {"too short"});
  // Offsets beyond the data section.
  expect_refused("offsets.safetensors", with_header(bytes, [&](nlohmann::json& j) {
                   j[emb]["data_offsets"][1] = j[emb]["data_offsets"][1].get<uint64_t>() + (1u << 30);
                 }), {"'" + emb + "'", "out of range"});
  // dtype that does not match the byte count.
  expect_refused("dtype.safetensors", with_header(bytes, [&](nlohmann::json& j) {
                   j[emb]["dtype"] = "F32";
                 }), {"'" + emb + "'", "need"});
  // Two tensors on the same bytes.
  const std::string fc = "backbone.layers.0.mlp.fc1.weight", fc2 = "backbone.layers.0.mlp.fc2.weight";
  expect_refused("overlap.safetensors", with_header(bytes, [&](nlohmann::json& j) {
                   j[fc2]["data_offsets"] = j[fc]["data_offsets"];
                 }), {"overlap"});
  // A wrong shape (consistent offsets) and a missing tensor.
  expect_refused("shape.safetensors", with_header(bytes, [&](nlohmann::json& j) {
                   auto s = j[fc]["shape"];
                   j[fc]["shape"] = {s[1], s[0]};
                 }), {"'" + fc + "'", "shape"});
  expect_refused("missing.safetensors", with_header(bytes, [&](nlohmann::json& j) { j.erase(fc); }),
                 {"missing tensor '" + fc + "'"});
  // The intact file still loads.
  EXPECT_NO_THROW(load_model_mapped(good));
}
