// The public API (include/hippo/hippo.hpp): sessions over one shared Model give the engine's
// whole-sequence results; step_batch equals single steps; fork, save/restore (file and bytes)
// continue exactly; four threads sharing a Model make the tokens of the same work done in turn.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/rng.h"
#include "hippo/hippo.hpp"
#include "models/lm.h"
#include "models/load.h"
#include "test_util.h"
#include "train/checkpoint.h"

using namespace hippo;
using test_util::error_of;
using test_util::TempDir;

namespace {

struct Kind {
  const char* name;
  nlohmann::json extra;
};

void PrintTo(const Kind& k, std::ostream* os) { *os << k.name; }

const std::vector<Kind>& kinds() {
  static const std::vector<Kind> k = {
      {"h3", {{"layers", {"h3", "h3"}}}},
      {"h3_heads2", {{"layers", {"h3", "h3"}}, {"head_dim", 2}}},
      {"attention_rotary", {{"layers", {"attention", "attention"}}, {"rotary_dim", 4}}},
      {"transformer_learned_pos",
       {{"layers", {"attention", "attention"}}, {"learned_pos", true}, {"max_position", 64}}},
      {"s4d", {{"layers", {"s4d", "s4d"}}}},
      {"h3_no_shift", {{"layers", {"h3_noshift", "h3"}}}},
      {"h3_no_diag", {{"layers", {"h3_nodiag", "h3"}}}},
      {"hybrid", {{"layers", {"h3", "attention", "s4d"}}}},
  };
  return k;
}

// A small random model (byte vocabulary) written to `path`; matrices scaled so that every
// layer moves the logits by O(1) and a wrong state shows as a large difference.
void write_model(const std::string& path, const nlohmann::json& extra, uint64_t seed = 1) {
  nlohmann::json j = {{"vocab_size", 257}, {"d_model", 16}, {"n_layer", 2}, {"d_state", 8},
                      {"attn_heads", 2}};
  for (auto& [k, v] : extra.items()) j[k] = v;
  if (j["layers"].size() != 2) j["n_layer"] = j["layers"].size();
  LanguageModel m(ModelConfig::from_json(j, "api_test"));
  m.init(seed);
  for (auto& p : m.params()) {
    if (p.param->kind != ParamKind::Decay) continue;
    float* w = p.param->value.data();
    for (int64_t i = 0; i < p.param->value.numel(); ++i) w[i] *= 8.0f;
  }
  save_weights(path, m);
}

std::vector<int32_t> random_tokens(int n, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng.below(256));
  return t;
}

std::vector<float> copy(std::span<const float> s) { return {s.begin(), s.end()}; }

double max_rel(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    num = std::max(num, std::abs(static_cast<double>(a[i]) - b[i]));
    den = std::max(den, std::abs(static_cast<double>(b[i])));
  }
  return num / std::max(den, 1e-30);
}

int32_t greedy(std::span<const float> l) {
  return static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
}

class ApiKinds : public ::testing::TestWithParam<Kind> {
 protected:
  TempDir dir{"api"};
  std::shared_ptr<const Model> model;
  void SetUp() override {
    write_model(dir.file("m.safetensors"), GetParam().extra);
    model = Model::load(dir.file("m.safetensors"));
  }
};

// Prefill + steps through a Session equal the engine's whole-sequence forward at every
// position (an independent path: convolution mode over the full sequence).
TEST_P(ApiKinds, SessionEqualsWholeSequenceForward) {
  const auto seq = random_tokens(20, 7);
  LanguageModel ref(ModelConfig::from_json(nlohmann::json::parse(model->info().config_json), "ref"));
  load_model_weights(dir.file("m.safetensors"), ref);
  const float* all = ref.forward(seq.data(), 1, static_cast<int>(seq.size()));
  const int64_t PV = ref.config().padded_vocab();
  const int V = model->info().vocab_size;
  Session s(model);
  auto lg = s.prefill(std::span<const int32_t>(seq.data(), 8));
  EXPECT_LT(max_rel(lg, {all + 7 * PV, static_cast<size_t>(V)}), 1e-4);
  for (size_t i = 8; i < seq.size(); ++i) {
    lg = s.step(seq[i]);
    EXPECT_LT(max_rel(lg, {all + static_cast<int64_t>(i) * PV, static_cast<size_t>(V)}), 1e-4)
        << "position " << i;
  }
  EXPECT_EQ(s.position(), 20);
}

// Sessions at different positions stepped together equal each stepped alone.
TEST_P(ApiKinds, StepBatchEqualsSingleSteps) {
  const std::vector<int> lengths = {5, 9, 1, 3};
  std::vector<Session> batched, alone;
  for (size_t i = 0; i < lengths.size(); ++i) {
    Session s(model);
    s.prefill(random_tokens(lengths[i], 100 + i));
    alone.push_back(s.fork());
    batched.push_back(std::move(s));
  }
  // Stagger the positions further: session i takes i extra single steps first.
  for (size_t i = 0; i < batched.size(); ++i)
    for (size_t j = 0; j < i; ++j) {
      batched[i].step(static_cast<int32_t>(j + 1));
      alone[i].step(static_cast<int32_t>(j + 1));
    }
  std::vector<Session*> ptrs;
  for (auto& s : batched) ptrs.push_back(&s);
  for (int t = 0; t < 6; ++t) {
    std::vector<int32_t> next;
    for (auto& s : batched) next.push_back(greedy(s.logits()));
    step_batch(ptrs, next);
    for (size_t i = 0; i < alone.size(); ++i) {
      alone[i].step(next[i]);
      EXPECT_LT(max_rel(batched[i].logits(), alone[i].logits()), 1e-6)
          << "session " << i << " step " << t;
      EXPECT_EQ(greedy(batched[i].logits()), greedy(alone[i].logits()));
      EXPECT_EQ(batched[i].position(), alone[i].position());
    }
  }
}

// A fork, a state restored from a file and one restored from bytes continue exactly as the
// original (bit for bit, same sampled tokens).
TEST_P(ApiKinds, ForkSaveRestoreContinueExactly) {
  Session a(model, {0.8f, 0, 1.0f, 42});
  a.prefill(random_tokens(11, 3));
  a.step(5);
  Session f = a.fork();
  a.save(dir.file("s.state"));
  const std::vector<uint8_t> bytes = a.save_bytes();
  Session from_file(model, {0.8f, 0, 1.0f, 42});
  from_file.restore(dir.file("s.state"));
  Session from_bytes(model, {0.8f, 0, 1.0f, 42});
  from_bytes.restore_bytes(bytes);
  // The restored sessions' samplers start from the seed; make the original's do the same.
  a.set_sampling({0.8f, 0, 1.0f, 42});
  EXPECT_EQ(from_file.position(), a.position());
  EXPECT_EQ(from_bytes.position(), a.position());
  for (int t = 0; t < 12; ++t) {
    const auto expect = copy(a.logits());
    EXPECT_EQ(copy(f.logits()), expect) << "fork, step " << t;
    EXPECT_EQ(copy(from_file.logits()), expect) << "file, step " << t;
    EXPECT_EQ(copy(from_bytes.logits()), expect) << "bytes, step " << t;
    const int32_t tok = a.sample();
    EXPECT_EQ(from_file.sample(), tok);
    EXPECT_EQ(from_bytes.sample(), tok);
    a.step(tok);
    f.step(tok);
    from_file.step(tok);
    from_bytes.step(tok);
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, ApiKinds, ::testing::ValuesIn(kinds()),
                         [](const auto& info) { return std::string(info.param.name); });

// Greedy generation from one prompt: the tokens.
std::vector<int32_t> generate(const std::shared_ptr<const Model>& m, const std::vector<int32_t>& prompt,
                              int n) {
  Session s(m);
  s.prefill(prompt);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(greedy(s.logits()));
    s.step(out.back());
  }
  return out;
}

TEST(Api, FourThreadsShareOneModel) {
  TempDir dir("api_threads");
  write_model(dir.file("m.safetensors"), {{"layers", {"h3", "attention", "s4d"}}});
  const auto model = Model::load(dir.file("m.safetensors"));
  constexpr int kThreads = 4, kPerThread = 3, kTokens = 24;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < kThreads * kPerThread; ++i) prompts.push_back(random_tokens(3 + 5 * i, 50 + i));
  std::vector<std::vector<int32_t>> expect;
  for (const auto& p : prompts) expect.push_back(generate(model, p, kTokens));
  std::vector<std::vector<int32_t>> got(prompts.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int j = 0; j < kPerThread; ++j) {
        const size_t i = static_cast<size_t>(t * kPerThread + j);
        got[i] = generate(model, prompts[i], kTokens);
      }
    });
  for (auto& th : threads) th.join();
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(got[i], expect[i]) << "sequence " << i;
}

TEST(Api, RefusesBadInputs) {
  TempDir dir("api_errors");
  write_model(dir.file("a.safetensors"), {{"layers", {"h3", "h3"}}}, 1);
  write_model(dir.file("b.safetensors"), {{"layers", {"h3", "h3"}}}, 2);
  const auto a = Model::load(dir.file("a.safetensors"));
  const auto b = Model::load(dir.file("b.safetensors"));
  Session s(a), t(b);
  EXPECT_NE(error_of([&] { s.prefill({}); }).find("no tokens"), std::string::npos);
  EXPECT_NE(error_of([&] { s.step(257); }).find("outside the vocabulary"), std::string::npos);
  EXPECT_NE(error_of([&] { s.step(-1); }).find("outside the vocabulary"), std::string::npos);
  EXPECT_NE(error_of([&] { s.sample(); }).find("no logits yet"), std::string::npos);
  EXPECT_NE(error_of([&] { s.save_bytes(); }).find("nothing to save"), std::string::npos);
  s.step(1);
  t.step(1);
  std::vector<Session*> two = {&s, &t};
  const std::vector<int32_t> tok2 = {1, 2};
  EXPECT_NE(error_of([&] { step_batch(two, tok2); }).find("another model"), std::string::npos);
  std::vector<Session*> dup = {&s, &s};
  EXPECT_NE(error_of([&] { step_batch(dup, tok2); }).find("appears twice"), std::string::npos);
  std::vector<Session*> one = {&s};
  EXPECT_NE(error_of([&] { step_batch(one, tok2); }).find("one token per session"),
            std::string::npos);
  // A state of another model's weights is refused, and the session is left as it was.
  const auto bytes = t.save_bytes();
  const auto before = copy(s.logits());
  EXPECT_NE(error_of([&] { s.restore_bytes(bytes); }), "");
  EXPECT_EQ(copy(s.logits()), before);
  std::vector<uint8_t> broken = s.save_bytes();
  broken[broken.size() / 2] ^= 0x40;
  EXPECT_NE(error_of([&] { s.restore_bytes(broken); }), "");
  EXPECT_NE(error_of([&] { Model::load(dir.file("missing.safetensors")); }).find("missing.safetensors"),
            std::string::npos);
  EXPECT_THROW(Session(std::shared_ptr<const Model>()), Error);
  // A state is never written over the model or over a file of another kind.
  const auto model_size = std::filesystem::file_size(dir.file("a.safetensors"));
  EXPECT_NE(error_of([&] { s.save(dir.file("a.safetensors")); }), "");
  EXPECT_EQ(std::filesystem::file_size(dir.file("a.safetensors")), model_size);
  EXPECT_NO_THROW(Model::load(dir.file("a.safetensors")));
  {
    std::ofstream notes(dir.file("notes.txt"));
    notes << "my notes";
  }
  EXPECT_NE(error_of([&] { s.save(dir.file("notes.txt")); }).find("not a hippo state file"),
            std::string::npos);
  EXPECT_EQ(std::filesystem::file_size(dir.file("notes.txt")), 8u);
  s.save(dir.file("ok.state"));
  s.save(dir.file("ok.state"));  // over a state file of its own: allowed
}

TEST(Api, ModelInfoAndTokenizer) {
  TempDir dir("api_info");
  write_model(dir.file("m.safetensors"), {{"layers", {"h3", "attention"}}});
  const auto m = Model::load(dir.file("m.safetensors"));
  EXPECT_EQ(m->info().layers, "h3,attention");
  EXPECT_EQ(m->info().vocab_size, 257);
  EXPECT_EQ(m->info().n_layer, 2);
  EXPECT_GT(m->info().num_params, 0);
  const auto ids = m->tokenizer().encode("hi");
  EXPECT_EQ(ids, (std::vector<int32_t>{'h', 'i'}));
  EXPECT_EQ(m->tokenizer().decode(ids), "hi");
  LoadOptions in_memory;
  in_memory.mmap = false;
  const auto mem = Model::load(dir.file("m.safetensors"), in_memory);
  Session a(m), b(mem);
  EXPECT_EQ(copy(a.prefill(ids)), copy(b.prefill(ids)));
}

}  // namespace

namespace {

// Freeing the kernels' per-thread scratch between calls changes no result.
TEST(Api, ReleaseThreadScratchKeepsResults) {
  TempDir dir("api_scratch");
  write_model(dir.file("m.safetensors"), {{"layers", {"h3", "attention"}}});
  const auto m = Model::load(dir.file("m.safetensors"));
  const auto prompt = random_tokens(40, 9);
  const auto expect = generate(m, prompt, 8);
  release_thread_scratch();
  EXPECT_EQ(generate(m, prompt, 8), expect);
  EXPECT_NE(cpu_features(), "");
}

}  // namespace
