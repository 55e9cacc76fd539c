// Issue 11, loading and data: NaN/Inf weights refused by every loader and never sampled from,
// corpora whose splits all hold text (or a refusal naming the empty one), strict config JSON,
// and models refused from their config when they cannot fit in memory.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/bf16.h"
#include "core/error.h"
#include "core/finite.h"
#include "data/byte_tokenizer.h"
#include "data/corpus.h"
#include "data/hash.h"
#include "generate/sampler.h"
#include "io/safetensors.h"
#include "io/strict_json.h"
#include "models/bf16_weights.h"
#include "models/load.h"
#include "models/memory_check.h"
#include "test_util.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/lm_eval.h"

using namespace hippo;
using hippo::test_util::error_of;
using hippo::test_util::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

json small_json() {
  return {{"vocab_size", 61}, {"d_model", 16}, {"n_layer", 2}, {"d_state", 8}, {"attn_heads", 2},
          {"layers", {"h3", "attention"}}};
}

ModelConfig small_config() { return ModelConfig::from_json(small_json(), "test"); }

void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Item 7: non-finite weights and logits

TEST(LoadSafety, FirstNonfiniteFindsEveryPositionAndOnlyNanInf) {
  for (int64_t n : {0, 1, 7, 4095, 4096, 4097, 10000}) {
    std::vector<float> x(static_cast<size_t>(n), 1.5f);
    std::vector<uint16_t> h(static_cast<size_t>(n), f32_to_bf16(1.5f));
    EXPECT_EQ(first_nonfinite(x.data(), n), -1) << n;
    EXPECT_EQ(first_nonfinite_bf16(h.data(), n), -1) << n;
    for (int64_t at : {int64_t{0}, n / 2, n - 1}) {
      if (at < 0 || at >= n) continue;
      for (float bad : {kNaN, kInf, -kInf}) {
        auto y = x;
        auto g = h;
        y[at] = bad;
        g[at] = f32_to_bf16(bad);
        if (at + 1 < n) y[at + 1] = bad;  // the first one is reported
        EXPECT_EQ(first_nonfinite(y.data(), n), at) << n << " " << at << " " << bad;
        EXPECT_EQ(first_nonfinite_bf16(g.data(), n), at) << n << " " << at << " " << bad;
      }
    }
  }
  // Extremes that are finite stay accepted.
  const float ok[] = {std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                      std::numeric_limits<float>::denorm_min(), -0.0f};
  EXPECT_EQ(first_nonfinite(ok, 4), -1);
}

// The same model saved with one poisoned weight must be refused by load_model,
// load_model_mapped (fp32 in place, bf16 in place, converted) and load_checkpoint, naming the
// file and the tensor.
TEST(LoadSafety, NonFiniteWeightsAreRefusedByEveryLoader) {
  TempDir dir("nonfinite");
  const std::string linear = "backbone.layers.1.mixer.Wqkv.weight";  // bf16 in the bf16 file
  const std::string norm = "backbone.layers.0.norm1.bias";          // always fp32 / converted
  for (const std::string& victim : {linear, norm}) {
    for (float bad : {kNaN, kInf, -kInf}) {
      LanguageModel m(small_config());
      m.init(3);
      for (auto& p : m.params())
        if (p.name == victim) p.param->value.data()[p.param->value.numel() - 1] = bad;
      const std::string f32 = dir.file("w.safetensors"), bf = dir.file("w_bf16.safetensors");
      const std::string ck = dir.file("ck.safetensors");
      save_weights(f32, m);
      save_weights_bf16(bf, m);
      save_checkpoint(ck, m, nullptr);
      auto expect_refused = [&](const std::string& what, const std::string& file, auto load) {
        const std::string e = error_of(load);
        EXPECT_TRUE(contains(e, file) && contains(e, "'" + victim + "'") && contains(e, "non-finite"))
            << what << " " << victim << " " << bad << ": " << (e.empty() ? "accepted" : e);
      };
      expect_refused("load_model", f32, [&] { load_model(f32); });
      expect_refused("load_model_mapped", f32, [&] { load_model_mapped(f32); });
      expect_refused("load_model (bf16 file)", bf, [&] { load_model(bf); });
      expect_refused("load_model_mapped (bf16)", bf, [&] { load_model_mapped(bf); });
      LanguageModel into(small_config());
      expect_refused("load_checkpoint", ck, [&] { load_checkpoint(ck, into, nullptr); });
    }
  }
  // A clean model still loads every way.
  LanguageModel m(small_config());
  m.init(3);
  save_weights(dir.file("ok.safetensors"), m);
  save_weights_bf16(dir.file("ok_bf16.safetensors"), m);
  EXPECT_NO_THROW(load_model(dir.file("ok.safetensors")));
  EXPECT_NO_THROW(load_model_mapped(dir.file("ok.safetensors")));
  EXPECT_NO_THROW(load_model_mapped(dir.file("ok_bf16.safetensors")));
}

// The optimizer moments of a checkpoint are checked as the weights are: a NaN moment would
// poison every step after a resume.
TEST(LoadSafety, NonFiniteOptimizerMomentsAreRefused) {
  TempDir dir("nonfinite_moments");
  for (int which : {0, 1}) {
    LanguageModel m(small_config());
    m.init(3);
    AdamW adam(m.params(), AdamWOptions{});
    auto& moments = which == 0 ? adam.first_moments() : adam.second_moments();
    moments[1].data()[0] = kNaN;
    const std::string ck = dir.file("ck.safetensors");
    save_checkpoint(ck, m, &adam);
    LanguageModel into(small_config());
    AdamW into_adam(into.params(), AdamWOptions{});
    const std::string e = error_of([&] { load_checkpoint(ck, into, &into_adam); });
    const std::string name = std::string(which == 0 ? "optim.m." : "optim.v.") + m.params()[1].name;
    EXPECT_TRUE(contains(e, ck) && contains(e, name) && contains(e, "non-finite")) << e;
  }
}

// An F64 weight above FLT_MAX becomes Inf only when converted: checked after conversion.
TEST(LoadSafety, ConversionOverflowIsRefused) {
  TempDir dir("overflow");
  LanguageModel m(small_config());
  m.init(4);
  const std::string f = dir.file("w.safetensors");
  save_weights(f, m);
  // Rewrite ln_f.bias as F64 holding 1e300 (the file format allows F64 tensors).
  std::ifstream in(f, std::ios::binary);
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | static_cast<unsigned char>(bytes[i]);
  json h = json::parse(bytes.substr(8, hlen));
  std::string data = bytes.substr(8 + hlen);
  const std::string name = "backbone.ln_f.bias";
  const uint64_t n = h[name]["shape"][0].get<uint64_t>();
  std::string extra(n * 8, '\0');
  for (uint64_t i = 0; i < n; ++i) {
    const double v = i == 3 ? 1e300 : 0.5;
    std::memcpy(extra.data() + 8 * i, &v, 8);
  }
  h[name]["dtype"] = "F64";
  h[name]["data_offsets"] = {data.size(), data.size() + extra.size()};
  data += extra;
  std::string hs = h.dump();
  hs += std::string((8 - (8 + hs.size()) % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((hs.size() >> (8 * i)) & 0xff);
  std::ofstream(f, std::ios::binary | std::ios::trunc) << out << hs << data;
  for (auto load : {+[](const std::string& p) { load_model(p); },
                    +[](const std::string& p) { load_model_mapped(p); }}) {
    const std::string e = error_of([&] { load(f); });
    EXPECT_TRUE(contains(e, name) && contains(e, "element 3")) << e;
  }
}

TEST(LoadSafety, SamplerRefusesNonFiniteLogits) {
  const int V = 50;
  std::vector<float> logits(V);
  for (int i = 0; i < V; ++i) logits[i] = 0.1f * static_cast<float>(i % 7);
  const SamplerConfig configs[] = {{0.0f, 0, 1.0f}, {1.0f, 0, 1.0f}, {0.8f, 5, 1.0f}, {1.0f, 0, 0.9f}};
  for (const SamplerConfig& c : configs) {
    Sampler s(c, 1);
    EXPECT_NO_THROW(s.sample(logits.data(), V));
    for (float bad : {kNaN, kInf, -kInf}) {
      for (int at : {0, 17, V - 1}) {
        auto l = logits;
        l[at] = bad;
        const std::string e = error_of([&] { s.sample(l.data(), V, 123); });
        EXPECT_TRUE(contains(e, "position 123") && contains(e, str("logit ", at)))
            << "temp " << c.temperature << " top_k " << c.top_k << " top_p " << c.top_p << " bad "
            << bad << " at " << at << ": " << (e.empty() ? "sampled" : e);
        std::vector<int32_t> ids;
        std::vector<float> probs;
        EXPECT_FALSE(error_of([&] { s.candidates(l.data(), V, ids, probs); }).empty());
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Item 8: every split holds text, or the split is refused by name

namespace {

// The text of each split of a corpus, pieces in corpus order.
std::array<std::string, 3> split_texts(const Corpus& c) {
  std::array<std::string, 3> t;
  for (const Document& d : c.docs) t[static_cast<int>(d.split)] += d.text;
  return t;
}

}  // namespace

TEST(LoadSafety, SingleSmallFileGetsAllThreeSplitsByPosition) {
  TempDir dir("single_small");
  std::string text;
  for (int i = 0; i < 60; ++i) text += str("Line ", i, " of a short story, with some words.\n");
  // Both names once went wholly to one split (story.txt train, notes.txt test) by name hash.
  for (const char* name : {"story.txt", "notes.txt", "a.txt"}) {
    write_text(dir.file(name), text);
    const Corpus c = load_corpus(dir.file(name));
    EXPECT_TRUE(c.split_by_position);
    const auto t = split_texts(c);
    for (int s = 0; s < 3; ++s) EXPECT_FALSE(t[s].empty()) << name << " split " << s;
    EXPECT_EQ(t[0] + t[1] + t[2], text) << name;  // in order, nothing lost or repeated
    // ~90 / 5 / 5 of the bytes, cut after a line break.
    EXPECT_NEAR(static_cast<double>(t[0].size()) / text.size(), 0.90, 0.03) << name;
    EXPECT_NEAR(static_cast<double>(t[1].size()) / text.size(), 0.05, 0.03) << name;
    EXPECT_EQ(t[0].back(), '\n');
    EXPECT_EQ(t[1].back(), '\n');
    // Deterministic, and only the last piece of the text ends a document (one end-of-text).
    ByteTokenizer tok;
    int eots = 0;
    for (Split s : {Split::Train, Split::Validation, Split::Test}) {
      const auto ids = tokenize_split(c, s, tok);
      EXPECT_EQ(ids, tokenize_split(load_corpus(dir.file(name)), s, tok));
      for (int32_t id : ids) eots += id == tok.eot_id();
    }
    EXPECT_EQ(eots, 1);
  }
}

TEST(LoadSafety, TinyAndOneLineFilesStillSplitOrAreRefusedByName) {
  TempDir dir("tiny");
  ByteTokenizer tok;
  // Three bytes: one each. One long line without breaks: cut at UTF-8 boundaries.
  write_text(dir.file("abc.txt"), "abc");
  auto t = split_texts(load_corpus(dir.file("abc.txt")));
  EXPECT_EQ(t[0], "a");
  EXPECT_EQ(t[1], "b");
  EXPECT_EQ(t[2], "c");
  std::string line;
  for (int i = 0; i < 300; ++i) line += "é";  // two bytes each
  write_text(dir.file("line.txt"), line);
  t = split_texts(load_corpus(dir.file("line.txt")));
  for (int s = 0; s < 3; ++s) {
    ASSERT_FALSE(t[s].empty());
    EXPECT_EQ(t[s].size() % 2, 0u) << "split " << s << " cuts a character";
  }
  // Empty and two-byte files: every split is refused by name, with the corpus named.
  write_text(dir.file("empty.txt"), "");
  write_text(dir.file("ab.txt"), "ab");
  for (const char* name : {"empty.txt", "ab.txt"}) {
    for (Split s : {Split::Validation, Split::Test}) {
      const std::string e = error_of([&] {
        split_tokens(dir.file(name), s, tok, default_cache_path(dir.file("cache"), dir.file(name), s, tok));
      });
      EXPECT_TRUE(contains(e, dir.file(name)) && contains(e, str(split_name(s), " split is empty")))
          << name << ": " << (e.empty() ? "accepted" : e);
    }
  }
  const std::string e = error_of([&] {
    split_tokens(dir.file("empty.txt"), Split::Train, tok,
                 default_cache_path(dir.file("cache"), dir.file("empty.txt"), Split::Train, tok));
  });
  EXPECT_TRUE(contains(e, "train split is empty")) << e;
}

TEST(LoadSafety, LargeSingleFileKeepsDocumentsAndOrder) {
  TempDir dir("single_large");
  std::string text = "first document<|endoftext|>second one<|endoftext|>";
  for (int i = 0; i < 30000; ++i) text += str("line ", i, " of a long text\n");
  write_text(dir.file("book.txt"), text);
  const Corpus c = load_corpus(dir.file("book.txt"));
  const auto t = split_texts(c);
  for (int s = 0; s < 3; ++s) EXPECT_GT(t[s].size(), 10000u) << s;
  // Decoding train + validation + test (end-of-text as the marker) gives back the file: pieces
  // come in text order and only real document ends carry an end-of-text.
  ByteTokenizer tok;
  std::string back;
  for (Split s : {Split::Train, Split::Validation, Split::Test})
    for (int32_t id : tokenize_split(c, s, tok))
      back += id == tok.eot_id() ? std::string(kEndOfText) : std::string(1, static_cast<char>(id));
  EXPECT_EQ(back, text + std::string(kEndOfText));
}

TEST(LoadSafety, FoldersKeepTheHashSplitUnlessASplitWouldBeEmpty) {
  // Many files: exactly the name-hash split, as before (published Brown numbers depend on it).
  TempDir many("folder_many");
  for (int i = 0; i < 200; ++i) write_text(many.file(str("doc", i, ".txt")), str("document ", i, "\n"));
  const Corpus c = load_corpus(many.path.string());
  EXPECT_FALSE(c.split_by_position);
  ASSERT_EQ(c.docs.size(), 200u);
  for (const Document& d : c.docs) {
    EXPECT_EQ(d.split, split_of(d.name)) << d.name;
    EXPECT_TRUE(d.ends_document);
  }
  // One file, or three: the hash would starve a split, so by position over the folder.
  for (int files : {1, 3}) {
    TempDir few("folder_few");
    std::string all;
    for (int i = 0; i < files; ++i) {
      std::string text;
      for (int k = 0; k < 40; ++k) text += str("file ", i, " line ", k, "\n");
      write_text(few.file(str("f", i, ".txt")), text);
      all += text;
    }
    const Corpus f = load_corpus(few.path.string());
    EXPECT_TRUE(f.split_by_position) << files;
    const auto t = split_texts(f);
    for (int s = 0; s < 3; ++s) EXPECT_FALSE(t[s].empty()) << files << " files, split " << s;
    EXPECT_EQ(t[0] + t[1] + t[2], all);
  }
}

TEST(LoadSafety, BrownSplitIsUnchanged) {
  const fs::path brown = hippo::test_util::source_data_dir("brown");
  if (!is_brown_folder(brown.string())) GTEST_SKIP() << brown << " missing: run scripts/get_brown.sh";
  const Corpus c = load_corpus(brown.string());
  EXPECT_FALSE(c.split_by_position);
  for (const Document& d : c.docs) EXPECT_EQ(d.split, split_of(d.name)) << d.name;
}

// A cache written under the old rule (story.txt: every token in train, an empty test split)
// must not be served now: the corpus stamp names the split rule.
TEST(LoadSafety, CacheFromTheOldSplitRuleIsStale) {
  TempDir dir("stale_rule");
  std::string text;
  for (int i = 0; i < 50; ++i) text += str("sentence ", i, "\n");
  const std::string file = dir.file("story.txt");
  write_text(file, text);
  ByteTokenizer tok;
  // The stamp exactly as the old code computed it ("text-v1"), for an empty test split.
  uint64_t old_hash = fnv1a64("text-v1");
  const uint64_t size = fs::file_size(file);
  const int64_t mtime = fs::last_write_time(file).time_since_epoch().count();
  old_hash = fnv1a64(fs::relative(file, file).string(), old_hash);
  old_hash = fnv1a64(&size, sizeof size, old_hash);
  old_hash = fnv1a64(&mtime, sizeof mtime, old_hash);
  const std::string cache = default_cache_path(dir.file("cache"), file, Split::Test, tok);
  write_token_cache(cache, {tok.id(), old_hash, size}, tok.vocab_size(), {});
  std::string why;
  const TokenCache c = split_tokens(file, Split::Test, tok, cache, &why);
  EXPECT_EQ(why.rfind("stale", 0), 0u) << why;
  EXPECT_GT(c.size(), 2u);
}

TEST(LoadSafety, EvaluatingNoTokensIsRefused) {
  TempDir dir("eval_empty");
  LanguageModel m(small_config());
  m.init(1);
  ByteTokenizer tok;
  for (size_t n : {0, 1}) {
    const std::string path = dir.file(str("c", n, ".tok"));
    std::vector<int32_t> ids(n, 5);
    write_token_cache(path, {tok.id(), 1, 1}, 61, ids);
    auto c = TokenCache::open(path, {tok.id(), 1, 1});
    ASSERT_TRUE(c.has_value());
    const std::string e = error_of([&] { evaluate_lm(m, *c, 8, 2, nullptr); });
    EXPECT_TRUE(contains(e, "at least 2")) << n << ": " << (e.empty() ? "evaluated" : e);
  }
}

// ---------------------------------------------------------------------------------------------
// Item 10: config JSON is strict

TEST(LoadSafety, ConfigFieldsMustHaveTheirTypeAndRange) {
  auto error_with = [](const char* key, const json& v) {
    json j = small_json();
    j[key] = v;
    return error_of([&] { ModelConfig::from_json(j, "cfg.json"); });
  };
  struct Case {
    const char* key;
    json value;
    const char* shown;
  };
  const Case cases[] = {
      {"d_model", true, "true"},           {"d_model", 32.7, "32.7"},
      {"d_model", 4294967328ull, "4294967328"}, {"d_model", 1e10, "10000000000.0"},
      {"d_model", -4, "-4"},               {"d_model", 65537, "65537"},
      {"d_model", "64", "\"64\""},         {"n_layer", 0, "0"},
      {"n_layer", 1025, "1025"},           {"vocab_size", 4294967357ull, "4294967357"},
      {"d_state", 8.0, "8.0"},             {"head_dim", nullptr, "null"},
      {"attn_heads", json::array({2}), "[2]"}, {"max_position", (1 << 24) + 1, "16777217"},
      {"rotary_dim", -2, "-2"},            {"learned_pos", 1, "1"},
      {"learned_pos", "true", "\"true\""}, {"dropout", "0.1", "\"0.1\""},
      {"dropout", true, "true"},           {"init_std", nullptr, "null"},
      {"discretization", 5, "5"},          {"ssm_init", false, "false"},
  };
  for (const Case& c : cases) {
    const std::string e = error_with(c.key, c.value);
    EXPECT_TRUE(contains(e, "cfg.json") && contains(e, str("'", c.key, "'")) && contains(e, c.shown))
        << c.key << " = " << c.value.dump() << ": " << (e.empty() ? "accepted" : e);
  }
  // Integer fields name their range.
  EXPECT_TRUE(contains(error_with("d_model", 4294967328ull), "1..65536")) << error_with("d_model", 4294967328ull);
  // attn_layer_idx entries are range-checked as 64-bit values (4294967296 once wrapped to 0).
  json j = small_json();
  j.erase("layers");
  for (json idx : {json(4294967296ull), json(0.0), json(-1), json(true)}) {
    j["attn_layer_idx"] = {idx};
    const std::string e = error_of([&] { ModelConfig::from_json(j, "cfg.json"); });
    EXPECT_TRUE(contains(e, "attn_layer_idx")) << idx.dump() << ": " << (e.empty() ? "accepted" : e);
  }
  j["attn_layer_idx"] = {1};
  EXPECT_EQ(ModelConfig::from_json(j, "cfg.json").mixers[1], MixerKind::Attention);
  // The valid config and the round trip still work.
  const ModelConfig ok = small_config();
  EXPECT_EQ(ModelConfig::from_json(ok.to_json(), "round trip").to_json(), ok.to_json());
}

TEST(LoadSafety, ConfigFilesRefuseDuplicateKeysAndNonFiles) {
  TempDir dir("cfgfile");
  const std::string f = dir.file("c.json");
  write_text(f, R"({"vocab_size": 61, "d_model": 16, "n_layer": 2, "d_model": 4096})");
  std::string e = error_of([&] { ModelConfig::load(f); });
  EXPECT_TRUE(contains(e, f) && contains(e, "duplicate key 'd_model'")) << e;
  write_text(f, R"({"vocab_size": 61, "d_model": 16, "n_layer": 2, "layers": ["h3", "h3"], "x": {"a": 1, "a": 2}})");
  e = error_of([&] { ModelConfig::load(f); });
  EXPECT_TRUE(contains(e, "duplicate key 'a'")) << e;
  // Syntax errors in words, without nlohmann's "[json.exception...]" tag.
  write_text(f, R"({"vocab_size": 61,)");
  e = error_of([&] { ModelConfig::load(f); });
  EXPECT_TRUE(contains(e, f) && contains(e, "not valid JSON") && !contains(e, "json.exception")) << e;
  // A folder, a device, something far too big for a config.
  EXPECT_TRUE(contains(error_of([&] { ModelConfig::load(dir.path.string()); }), "regular"));
  EXPECT_TRUE(contains(error_of([&] { ModelConfig::load("/dev/zero"); }), "regular"));
  write_text(f, std::string(2 << 20, ' '));
  EXPECT_TRUE(contains(error_of([&] { ModelConfig::load(f); }), "limit"));
  write_text(f, small_json().dump());
  EXPECT_EQ(ModelConfig::load(f).d_model, 16);
  // The config inside a weights file is held to the same rules.
  LanguageModel m(small_config());
  m.init(2);
  std::vector<NamedTensor> list;
  for (auto& p : m.params()) list.push_back({p.name, &p.param->value});
  std::string cfg = m.config().to_json().dump();
  cfg.insert(1, "\"d_model\": 4096, ");
  const std::string w = dir.file("dup.safetensors");
  save_safetensors(w, list, {{"format", "hippo"}, {"config", cfg}});
  for (auto load : {+[](const std::string& p) { load_model(p); },
                    +[](const std::string& p) { load_model_mapped(p); }}) {
    e = error_of([&] { load(w); });
    EXPECT_TRUE(contains(e, w) && contains(e, "duplicate key 'd_model'")) << e;
  }
}

TEST(LoadSafety, StrictJsonErrorsAreCleanText) {
  const std::string e = error_of([] { parse_json_strict("[1, 2", "line 3"); });
  EXPECT_TRUE(contains(e, "line 3: not valid JSON") && !contains(e, "[json.exception")) << e;
  EXPECT_EQ(json_error_text(Error("a: [json.exception.parse_error.101] parse error at 2")),
            "a: parse error at 2");
  EXPECT_EQ(parse_json_strict(R"([{"a": 1}, {"a": 2}])", "x").size(), 2u);  // same key, two objects
}

// ---------------------------------------------------------------------------------------------
// Item 15: memory is estimated from the config before allocating

TEST(LoadSafety, NumParamsMatchesTheModelForEveryMixer) {
  for (const char* mixer : {"h3", "attention", "s4d", "h3_noshift", "h3_nodiag"}) {
    for (bool learned : {false, true}) {
      json j = {{"vocab_size", 93}, {"d_model", 24}, {"n_layer", 2}, {"d_state", 6}, {"head_dim", 3},
                {"attn_heads", 4}, {"learned_pos", learned}, {"max_position", 40},
                {"layers", {mixer, "h3"}}};
      const ModelConfig c = ModelConfig::from_json(j, "test");
      LanguageModel m(c);
      EXPECT_EQ(c.num_params(), m.num_params()) << mixer << " learned_pos " << learned;
    }
  }
}

TEST(LoadSafety, ModelsThatCannotFitAreRefusedWithTheEstimate) {
  const ModelConfig c = small_config();
  const uint64_t p = static_cast<uint64_t>(c.num_params());
  const uint64_t fixed = estimate_model_memory(c).ssm_buffers;
  EXPECT_NO_THROW(check_model_memory(c, ModelUse::Training, "c.json", 16 * p + fixed));
  std::string e = error_of([&] { check_model_memory(c, ModelUse::Training, "c.json", 16 * p + fixed - 1); });
  EXPECT_TRUE(contains(e, "c.json: model needs ~") && contains(e, "GiB for parameters") &&
              contains(e, "training state") && contains(e, "GiB available"))
      << e;
  EXPECT_NO_THROW(check_model_memory(c, ModelUse::Fp32, "c.json", 4 * p + fixed));
  EXPECT_FALSE(error_of([&] { check_model_memory(c, ModelUse::Fp32, "c.json", 4 * p + fixed - 1); }).empty());
  EXPECT_NO_THROW(check_model_memory(c, ModelUse::Any, "c.json", 2 * p + fixed));
  EXPECT_NO_THROW(check_model_memory(c, ModelUse::Any, "c.json", 0));  // unknown: no refusal
  // The widest config the bounds allow is refused by the constructor at once, before any
  // allocation (it once ran for a minute and took 7.8 GB before "out of memory").
  json big = {{"vocab_size", 50257}, {"d_model", 65536}, {"n_layer", 1024}, {"d_state", 64}};
  const auto t0 = std::chrono::steady_clock::now();
  e = error_of([&] { LanguageModel m(ModelConfig::from_json(big, "big.json")); });
  EXPECT_TRUE(contains(e, "model needs ~") && contains(e, "available")) << e;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

// A weights file whose config claims far more parameters than the file holds is refused
// before the model is built.
TEST(LoadSafety, ConfigClaimingMoreThanTheFileHoldsIsRefused) {
  TempDir dir("claim");
  LanguageModel m(small_config());
  m.init(2);
  std::vector<NamedTensor> list;
  for (auto& p : m.params()) list.push_back({p.name, &p.param->value});
  json cfg = m.config().to_json();
  cfg["d_model"] = 4096;
  cfg["attn_heads"] = 2;
  const std::string w = dir.file("claim.safetensors");
  save_safetensors(w, list, {{"format", "hippo"}, {"config", cfg.dump()}});
  for (auto load : {+[](const std::string& p) { load_model(p); },
                    +[](const std::string& p) { load_model_mapped(p); }}) {
    const std::string e = error_of([&] { load(w); });
    EXPECT_TRUE(contains(e, w) && contains(e, "file holds only")) << e;
  }
}
