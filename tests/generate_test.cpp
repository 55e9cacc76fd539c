// Recurrent generation: prefill + step equal the whole-sequence forward at every position;
// the sampler keeps exactly the right tokens; states save, load and fork without changing
// what is generated.
#include <gtest/gtest.h>

#include <limits>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"
#include "generate/sampler.h"
#include "generate/state_io.h"
#include "models/lm.h"

using namespace hippo;
namespace fs = std::filesystem;

namespace {

ModelConfig config_with(nlohmann::json extra) {
  nlohmann::json j = {{"vocab_size", 37}, {"d_model", 16}, {"n_layer", 3}, {"d_state", 8},
                      {"attn_heads", 2}};
  for (auto& [k, v] : extra.items()) j[k] = v;
  return ModelConfig::from_json(j, "test");
}

// Random init, then matrices scaled up so that every mixer moves the logits by O(1): a wrong
// recurrent state must show as a large error, not one hidden under the residual stream.
void init_model(LanguageModel& m, uint64_t seed) {
  m.init(seed);
  for (auto& p : m.params()) {
    if (p.param->kind != ParamKind::Decay) continue;
    float* w = p.param->value.data();
    for (int64_t i = 0; i < p.param->value.numel(); ++i) w[i] *= 15.0f;
  }
}

std::vector<int32_t> random_tokens(int n, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng.below(V));
  return t;
}

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::abs(static_cast<double>(a[i]) - b[i]));
    den = std::max(den, std::abs(static_cast<double>(b[i])));
  }
  return num / den;
}

struct RecurrentCase {
  const char* name;
  nlohmann::json cfg;
};

const std::vector<RecurrentCase>& recurrent_cases() {
  static const std::vector<RecurrentCase> cases = {
      {"h3", {{"layers", {"h3", "h3", "h3"}}}},
      {"h3_multihead", {{"layers", {"h3", "h3", "h3"}}, {"head_dim", 2}}},
      {"s4d", {{"layers", {"s4d", "s4d", "s4d"}}}},
      {"hybrid", {{"layers", {"h3", "attention", "h3"}}}},
      {"transformer_learned_pos",
       {{"layers", {"attention", "attention", "attention"}}, {"learned_pos", true},
        {"max_position", 32}}},
      {"rotary_hybrid", {{"layers", {"h3", "attention", "attention"}}, {"rotary_dim", 4}}},
      // More vocabulary rows than one block of the generation head (256), with a partial tail.
      {"hybrid_wide_vocab", {{"layers", {"h3", "attention", "h3"}}, {"vocab_size", 601}}},
  };
  return cases;
}

// Logits of recurrent decoding (prefill P tokens, then step) against the whole-sequence forward,
// for every position >= P - 1; returns the relative max-norm error.
double recurrent_error(LanguageModel& m, const std::vector<int32_t>& tok, int B, int L, int P,
                       bool fresh_state_for_steps = false) {
  const int64_t V = m.config().padded_vocab();
  const float* full = m.forward(tok.data(), B, L);
  std::vector<float> want, got;
  std::vector<int32_t> prompt(static_cast<size_t>(B) * P);
  for (int b = 0; b < B; ++b)
    std::copy_n(tok.data() + b * L, P, prompt.data() + b * P);
  std::vector<float> full_copy(full, full + B * L * V);
  ModelState st = m.new_state(B);
  const float* lg = m.prefill(prompt.data(), B, P, st);
  auto take = [&](const float* logits, int t) {
    for (int b = 0; b < B; ++b) {
      got.insert(got.end(), logits + b * V, logits + (b + 1) * V);
      const float* w = full_copy.data() + (static_cast<int64_t>(b) * L + t) * V;
      want.insert(want.end(), w, w + V);
    }
  };
  take(lg, P - 1);  // before the state goes: it holds the logits
  if (fresh_state_for_steps) {  // the negative control: steps that forget the prompt
    st = m.new_state(B);
    st.position = P;
  }
  std::vector<int32_t> next(B);
  for (int t = P; t < L; ++t) {
    for (int b = 0; b < B; ++b) next[b] = tok[b * L + t];
    take(m.step(next.data(), st), t);
  }
  EXPECT_EQ(st.position, L);
  return rel_err(got, want);
}

TEST(Generate, RecurrentDecodingEqualsForward) {
  const int B = 2, L = 20;
  for (const auto& c : recurrent_cases()) {
    LanguageModel m(config_with(c.cfg));
    init_model(m, 7);
    const auto tok = random_tokens(B * L, m.config().vocab_size, 3);
    for (int P : {1, 6, L}) {
      const double e = recurrent_error(m, tok, B, L, P);
      EXPECT_LE(e, 1e-4) << c.name << " prefill " << P;
      std::printf("[ recurrent ] %-24s prefill %2d: rel err %.2e\n", c.name, P, e);
    }
    // The comparison can fail: steps that lose the prompt's state are far off.
    EXPECT_GT(recurrent_error(m, tok, B, L, 6, true), 1e-2) << c.name;
  }
}

TEST(Generate, LearnedPositionsStopAtMaxPosition) {
  LanguageModel m(config_with({{"layers", {"attention", "h3", "h3"}}, {"learned_pos", true},
                               {"max_position", 4}}));
  init_model(m, 1);
  ModelState st = m.new_state(1);
  std::vector<int32_t> p = {1, 2, 3, 4};
  m.prefill(p.data(), 1, 4, st);
  int32_t t = 5;
  EXPECT_THROW(m.step(&t, st), Error);
  ModelState fresh = m.new_state(1);
  std::vector<int32_t> longp = {1, 2, 3, 4, 5};
  EXPECT_THROW(m.prefill(longp.data(), 1, 5, fresh), Error);
}

// A prefill continues a used state (chunked prefill; tests/chunked_prefill_test.cpp checks the
// numbers); a batch other than the state's is refused.
TEST(Generate, PrefillNeedsMatchingBatch) {
  LanguageModel m(config_with({{"layers", {"h3", "attention", "s4d"}}}));
  init_model(m, 1);
  ModelState st = m.new_state(2);
  std::vector<int32_t> p = {1, 2, 3, 4};
  EXPECT_THROW(m.prefill(p.data(), 1, 4, st), Error);
  m.prefill(p.data(), 2, 2, st);
  m.prefill(p.data(), 2, 2, st);
  EXPECT_EQ(st.position, 4);
}

// ---- Sampler ----

std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)) + 3.0f);
  return l;
}

TEST(Sampler, TopKKeepsTheKMostLikely) {
  const std::vector<float> l = {1, 5, 3, 5, 2, 0};
  Sampler s({1.0f, 3, 1.0f}, 0);
  std::vector<int32_t> ids;
  std::vector<float> probs;
  s.candidates(l.data(), 6, ids, probs);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 3, 2}));  // tie 5/5: lower id first
  const double z = 2 * std::exp(5.0) + std::exp(3.0);
  EXPECT_NEAR(probs[0], std::exp(5.0) / z, 1e-6);
  EXPECT_NEAR(probs[2], std::exp(3.0) / z, 1e-6);
  for (int i = 0; i < 500; ++i) {
    const int32_t t = s.sample(l.data(), 6);
    EXPECT_TRUE(t == 1 || t == 3 || t == 2) << t;
  }
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  const auto l = logits_of({0.05, 0.2, 0.5, 0.1, 0.15});
  std::vector<int32_t> ids;
  std::vector<float> probs;
  Sampler a({1.0f, 0, 0.8f}, 0);  // 0.5 + 0.2 = 0.7 < 0.8 <= 0.85
  a.candidates(l.data(), 5, ids, probs);
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 1, 4}));
  EXPECT_NEAR(probs[0], 0.5 / 0.85, 1e-5);
  EXPECT_NEAR(probs[2], 0.15 / 0.85, 1e-5);
  Sampler b({1.0f, 0, 0.45f}, 0);
  b.candidates(l.data(), 5, ids, probs);
  EXPECT_EQ(ids, (std::vector<int32_t>{2}));
  Sampler c({1.0f, 0, 0.96f}, 0);  // needs all but the 0.05 token... which reaches 0.95 < 0.96
  c.candidates(l.data(), 5, ids, probs);
  EXPECT_EQ(ids.size(), 5u);
  // top-k first, then top-p on the renormalised k: {0.5, 0.2} / 0.7; p = 0.75 needs both.
  Sampler d({1.0f, 2, 0.75f}, 0);
  d.candidates(l.data(), 5, ids, probs);
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 1}));
  Sampler e({1.0f, 2, 0.7f}, 0);  // 0.5 / 0.7 = 0.714 >= 0.7: the first alone
  e.candidates(l.data(), 5, ids, probs);
  EXPECT_EQ(ids, (std::vector<int32_t>{2}));
  for (int i = 0; i < 500; ++i) {
    const int32_t t = a.sample(l.data(), 5);
    EXPECT_TRUE(t == 2 || t == 1 || t == 4) << t;
  }
}

TEST(Sampler, TemperatureZeroIsArgmax) {
  Rng rng(5);
  Sampler s({0.0f, 0, 1.0f}, 9);
  std::vector<float> l(100);
  for (int rep = 0; rep < 50; ++rep) {
    for (auto& x : l) x = static_cast<float>(rng.normal());
    EXPECT_EQ(s.sample(l.data(), 100), std::max_element(l.begin(), l.end()) - l.begin());
  }
  const std::vector<float> tie = {0, 2, 1, 2};
  EXPECT_EQ(s.sample(tie.data(), 4), 1);
}

TEST(Sampler, FrequenciesFollowTheTemperedDistribution) {
  const auto l = logits_of({0.5, 0.3, 0.2});
  for (int k : {0, 3}) {  // the unsorted fast path and the sorted one
    Sampler s({0.5f, k, 1.0f}, 11);
    // Temperature 0.5 squares the probabilities: 0.25, 0.09, 0.04 over 0.38.
    std::vector<int> count(3);
    const int n = 40000;
    for (int i = 0; i < n; ++i) ++count[s.sample(l.data(), 3)];
    EXPECT_NEAR(count[0] / double(n), 0.25 / 0.38, 0.01) << k;
    EXPECT_NEAR(count[1] / double(n), 0.09 / 0.38, 0.01) << k;
    EXPECT_NEAR(count[2] / double(n), 0.04 / 0.38, 0.01) << k;
  }
}

// argmax against the plain loop it replaced (best = 0; if (x[i] > x[best]) best = i): ties,
// signed zeros, NaN at the front and inside, infinities, lengths around the 64-value blocks.
TEST(Sampler, ArgmaxIsThePlainLoops) {
  auto plain = [](const std::vector<float>& x) {
    int best = 0;
    for (int i = 1; i < static_cast<int>(x.size()); ++i)
      if (x[i] > x[best]) best = i;
    return best;
  };
  Rng rng(5);
  const float nan = std::nanf(""), inf = std::numeric_limits<float>::infinity();
  int checked = 0;
  for (int n : {1, 2, 63, 64, 65, 130, 50257})
    for (int trial = 0; trial < 12; ++trial) {
      std::vector<float> x(static_cast<size_t>(n));
      for (auto& v : x) v = static_cast<float>(std::floor(rng.normal() * 3));  // many ties
      const auto at = [&](int k) -> float& { return x[static_cast<size_t>(k % n)]; };
      if (trial == 1) at(n / 2) = nan;
      if (trial == 2) x[0] = nan;
      if (trial == 3) for (auto& v : x) v = -0.0f;
      if (trial == 4) {  // -0.0 first, 0.0 later: the first of the two
        std::fill(x.begin(), x.end(), -1.0f);
        at(n / 3) = -0.0f;
        at(n - 1) = 0.0f;
      }
      if (trial == 5) at(n / 4) = inf, at(n / 2) = inf;
      if (trial == 6) std::fill(x.begin(), x.end(), -inf);
      if (trial == 7) std::fill(x.begin(), x.end(), nan);
      EXPECT_EQ(argmax(x.data(), n), plain(x)) << "n " << n << " trial " << trial;
      ++checked;
    }
  EXPECT_EQ(checked, 7 * 12);
}

TEST(Sampler, ReproducibleGivenSeed) {
  Rng rng(2);
  std::vector<float> l(1000);
  for (auto& x : l) x = static_cast<float>(rng.normal() * 2);
  for (SamplerConfig c : {SamplerConfig{1.0f, 0, 1.0f}, SamplerConfig{0.8f, 50, 0.9f}}) {
    Sampler a(c, 42), b(c, 42), other(c, 43);
    std::vector<int32_t> ta, tb, to;
    for (int i = 0; i < 100; ++i) {
      ta.push_back(a.sample(l.data(), 1000));
      tb.push_back(b.sample(l.data(), 1000));
      to.push_back(other.sample(l.data(), 1000));
    }
    EXPECT_EQ(ta, tb);
    EXPECT_NE(ta, to);
  }
}

TEST(Sampler, BadSettingsAreErrors) {
  EXPECT_THROW(Sampler({-1.0f, 0, 1.0f}, 0), Error);
  EXPECT_THROW(Sampler({1.0f, -2, 1.0f}, 0), Error);
  EXPECT_THROW(Sampler({1.0f, 0, 0.0f}, 0), Error);
  EXPECT_THROW(Sampler({1.0f, 0, 1.5f}, 0), Error);
}

// ---- States ----

// Continues from logits `lg` of a state, sampling n tokens per sequence.
std::vector<int32_t> continue_from(LanguageModel& m, ModelState& st, const float* lg,
                                   Sampler& s, int n) {
  const int B = st.batch, V = m.config().padded_vocab();
  std::vector<int32_t> out, next(B);
  std::vector<float> keep(lg, lg + static_cast<int64_t>(B) * V);
  for (int i = 0; i < n; ++i) {
    for (int b = 0; b < B; ++b) next[b] = s.sample(keep.data() + b * V, m.config().vocab_size);
    out.insert(out.end(), next.begin(), next.end());
    const float* l2 = m.step(next.data(), st);
    keep.assign(l2, l2 + static_cast<int64_t>(B) * V);
  }
  return out;
}

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("hippo_gen_test_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

TEST(GenerateState, SaveLoadForkContinueAsUninterrupted) {
  const ModelConfig cfg = config_with({{"layers", {"h3", "attention", "s4d"}}, {"head_dim", 2}});
  LanguageModel m(cfg);
  init_model(m, 3);
  const int V = cfg.padded_vocab(), P = 7, n = 12;
  const auto prompt = random_tokens(P, cfg.vocab_size, 4);
  const SamplerConfig sc{0.9f, 10, 0.95f};

  // Uninterrupted: prefill, then sample n tokens.
  ModelState st = m.new_state(1);
  const float* lg = m.prefill(prompt.data(), 1, P, st);
  std::vector<float> prefix_logits(lg, lg + V);
  Sampler s0(sc, 99);
  const auto want = continue_from(m, st, prefix_logits.data(), s0, n);

  // Saved after the prompt, loaded, continued.
  const fs::path dir = temp_dir();
  const std::string file = (dir / "prefix.safetensors").string();
  ModelState st2 = m.new_state(1);
  m.prefill(prompt.data(), 1, P, st2);
  ModelState keep = clone_state(st2);
  save_state(file, m, st2);
  ModelState loaded = load_state(file, m);
  EXPECT_EQ(loaded.position, P);
  EXPECT_EQ(loaded.batch, 1);
  Sampler s1(sc, 99);
  EXPECT_EQ(continue_from(m, loaded, prefix_logits.data(), s1, n), want);
  // The original state, continued after the save, and its clone give the same tokens too.
  Sampler s2(sc, 99), s3(sc, 99);
  EXPECT_EQ(continue_from(m, st2, prefix_logits.data(), s2, n), want);
  EXPECT_EQ(continue_from(m, keep, prefix_logits.data(), s3, n), want);

  // Forked into a batch of 3 greedy continuations: each equals the single greedy run.
  ModelState single = load_state(file, m);
  Sampler g(SamplerConfig{0.0f, 0, 1.0f}, 0);
  const auto greedy = continue_from(m, single, prefix_logits.data(), g, n);
  ModelState base = load_state(file, m);
  ModelState forked = repeat_state(base, 3);
  reserve_state(m, forked, P + n);
  std::vector<float> lg3;
  for (int j = 0; j < 3; ++j) lg3.insert(lg3.end(), prefix_logits.begin(), prefix_logits.end());
  const auto got3 = continue_from(m, forked, lg3.data(), g, n);
  for (int j = 0; j < 3; ++j)
    for (int i = 0; i < n; ++i) EXPECT_EQ(got3[i * 3 + j], greedy[i]) << "copy " << j << " token " << i;
  // A saved batch state round-trips too.
  save_state(file, m, forked);
  EXPECT_EQ(load_state(file, m).batch, 3);
  fs::remove_all(dir);
}

TEST(GenerateState, FreshStateRoundTripsAndContinuesLikeAPrefill) {
  const ModelConfig cfg = config_with({{"layers", {"h3", "attention", "s4d"}}});
  LanguageModel m(cfg);
  init_model(m, 5);
  const fs::path dir = temp_dir();
  const std::string file = (dir / "fresh.safetensors").string();
  ModelState fresh = m.new_state(2);
  save_state(file, m, fresh);
  ModelState loaded = load_state(file, m);
  EXPECT_EQ(loaded.position, 0);
  std::vector<float> none;
  EXPECT_THROW(load_state(file, m, &none), Error);  // saved without logits
  // Stepping a loaded fresh state gives the logits of a one-token prefill.
  const std::vector<int32_t> t = {3, 9};
  const float* a = m.step(t.data(), loaded);
  std::vector<float> got(a, a + 2 * cfg.padded_vocab());
  ModelState p = m.new_state(2);
  const float* b = m.prefill(t.data(), 2, 1, p);
  std::vector<float> want(b, b + 2 * cfg.padded_vocab());
  EXPECT_LE(rel_err(got, want), 1e-5);
  fs::remove_all(dir);
}

TEST(GenerateState, LoadingForAnotherModelIsAClearError) {
  const ModelConfig cfg = config_with({{"layers", {"h3", "attention", "h3"}}});
  LanguageModel m(cfg);
  init_model(m, 3);
  ModelState st = m.new_state(1);
  const auto prompt = random_tokens(5, cfg.vocab_size, 4);
  m.prefill(prompt.data(), 1, 5, st);
  const fs::path dir = temp_dir();
  const std::string file = (dir / "s.safetensors").string();
  save_state(file, m, st);

  auto message_of = [&](LanguageModel& other) -> std::string {
    try {
      load_state(file, other);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  LanguageModel wider(config_with({{"layers", {"h3", "attention", "h3"}}, {"d_model", 32}}));
  init_model(wider, 3);
  const std::string e1 = message_of(wider);
  EXPECT_NE(e1.find("different model config"), std::string::npos) << e1;
  EXPECT_NE(e1.find("d_model"), std::string::npos) << e1;
  LanguageModel mixers(config_with({{"layers", {"h3", "h3", "h3"}}}));
  init_model(mixers, 3);
  EXPECT_NE(message_of(mixers).find("layers"), std::string::npos) << message_of(mixers);
  LanguageModel reseeded(cfg);
  init_model(reseeded, 4);
  EXPECT_NE(message_of(reseeded).find("different model weights"), std::string::npos);
  // Dropout does not change inference, so it does not block loading.
  nlohmann::json j = cfg.to_json();
  j["dropout"] = 0.2;
  LanguageModel dropped(ModelConfig::from_json(j, "test"));
  init_model(dropped, 3);
  EXPECT_EQ(message_of(dropped), "");
  fs::remove_all(dir);
}

}  // namespace
