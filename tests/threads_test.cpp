// Generation from one model on several threads (issue 11 item 19, issue 12): new_state,
// prefill, step and step_many are const and write only the states they are given, so threads
// generating from one model with their own states get exactly what they get one after the
// other. scripts/sanitize.sh runs
// these under ThreadSanitizer, which reports any shared write even when the results agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "core/rng.h"
#include "data/gpt2_bpe.h"
#include "test_util.h"
#include "models/lm.h"
#include "nn/h3.h"
#include "nn/s4d_mixer.h"

using namespace hippo;
namespace fs = std::filesystem;
using hippo::test_util::find_gpt2_dir;

namespace {

ModelConfig config_with(nlohmann::json extra) {
  nlohmann::json j = {{"vocab_size", 37}, {"d_model", 16}, {"n_layer", 3}, {"d_state", 8},
                      {"attn_heads", 2}};
  for (auto& [k, v] : extra.items()) j[k] = v;
  return ModelConfig::from_json(j, "test");
}

// Random init with the matrices scaled up, so that every layer moves the logits by O(1).
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
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng.below(V));
  return t;
}

// One generation: a fresh state, a prefill of the first P tokens of each sequence (none when
// P = 0: steps from the fresh state), then one step per remaining token. All logits returned.
struct Job {
  std::vector<int32_t> tokens;  // (B, L)
  int B, L, P;
};

std::vector<float> run_job(const LanguageModel& cm, const Job& j) {
  const int64_t V = cm.config().padded_vocab();
  std::vector<float> out;
  ModelState st = cm.new_state(j.B);
  std::vector<int32_t> col(static_cast<size_t>(j.B));
  if (j.P > 0) {
    std::vector<int32_t> prompt(static_cast<size_t>(j.B) * j.P);
    for (int b = 0; b < j.B; ++b)
      std::copy_n(j.tokens.data() + b * j.L, j.P, prompt.data() + b * j.P);
    const float* lg = cm.prefill(prompt.data(), j.B, j.P, st);
    out.insert(out.end(), lg, lg + j.B * V);
  }
  for (int t = j.P; t < j.L; ++t) {
    for (int b = 0; b < j.B; ++b) col[b] = j.tokens[static_cast<size_t>(b) * j.L + t];
    const float* lg = cm.step(col.data(), st);
    out.insert(out.end(), lg, lg + j.B * V);
  }
  return out;
}

struct Case {
  const char* name;
  nlohmann::json cfg;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"h3", {{"layers", {"h3", "h3", "h3"}}}},
      {"h3_multihead", {{"layers", {"h3", "h3_noshift", "h3"}}, {"head_dim", 2}}},
      {"s4d_zoh", {{"layers", {"s4d", "s4d", "h3_nodiag"}}, {"discretization", "zoh"}}},
      {"hybrid_rotary", {{"layers", {"h3", "attention", "s4d"}}, {"rotary_dim", 4}}},
      {"transformer_learned_pos",
       {{"layers", {"attention", "attention", "attention"}}, {"learned_pos", true},
        {"max_position", 32}}},
  };
  return c;
}

}  // namespace

// Two threads, each running a series of generations (steps from a fresh state, and prefill +
// steps) on its own states of one model at the same time, against the same generations run one
// after the other: bit for bit the same logits.
TEST(Threads, TwoThreadsGenerateFromOneModelAsSequentially) {
  for (const Case& c : cases()) {
    LanguageModel m(config_with(c.cfg));
    init_model(m, 11);
    const int V = m.config().vocab_size;
    std::vector<std::vector<Job>> per_thread(2);
    for (int t = 0; t < 2; ++t)
      for (int k = 0; k < 3; ++k) {
        const int B = 1 + (t + k) % 2, L = 20, P = k == 0 ? 0 : 3 + 5 * (k - 1) + t;
        per_thread[t].push_back(Job{random_tokens(B * L, V, 100 + 10 * t + k), B, L, P});
      }
    std::vector<std::vector<std::vector<float>>> want(2), got(2);
    for (int t = 0; t < 2; ++t)
      for (const Job& j : per_thread[t]) want[t].push_back(run_job(m, j));

    constexpr int kRounds = 3;  // more chances for the threads' steps to interleave
    std::atomic<int> ready{0};
    auto worker = [&](int t) {
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();  // start together
      for (int r = 0; r < kRounds; ++r)
        for (const Job& j : per_thread[t]) got[t].push_back(run_job(m, j));
    };
    std::thread a(worker, 0), b(worker, 1);
    a.join();
    b.join();
    for (int t = 0; t < 2; ++t) {
      ASSERT_EQ(got[t].size(), kRounds * per_thread[t].size());
      for (size_t i = 0; i < got[t].size(); ++i)
        EXPECT_EQ(got[t][i], want[t][i % per_thread[t].size()])
            << c.name << ": thread " << t << ", generation " << i;
    }
  }
}

// Greedy generation of two sequences groups (batch 1 and 2, different prompt lengths) on one
// thread: prefill of each, then greedy tokens with one step_many of both states per token.
std::vector<int32_t> greedy_pair(const LanguageModel& m, uint64_t seed) {
  const int V = m.config().vocab_size;
  const int64_t PV = m.config().padded_vocab();
  const int P0 = 4 + static_cast<int>(seed % 5), P1 = 9;
  ModelState a = m.new_state(1), b = m.new_state(2);
  const auto p0 = random_tokens(P0, V, seed), p1 = random_tokens(2 * P1, V, seed + 1);
  m.prefill(p0.data(), 1, P0, a);
  m.prefill(p1.data(), 2, P1, b);
  std::vector<ModelState*> both = {&a, &b};
  std::vector<int32_t> out, next(3);
  auto argmax = [&](const float* lg) {
    return static_cast<int32_t>(std::max_element(lg, lg + V) - lg);
  };
  for (int t = 0; t < 12; ++t) {
    next[0] = argmax(a.logits.data());
    next[1] = argmax(b.logits.data());
    next[2] = argmax(b.logits.data() + PV);
    out.insert(out.end(), next.begin(), next.end());
    m.step_many(next.data(), both);
  }
  return out;
}

// Four threads share one const model, each with its own states (prefill, then greedy decoding
// by step_many): the tokens of the same work done one thread after another.
TEST(Threads, FourThreadsGreedyFromOneConstModelAsSequentially) {
  for (const Case& c : cases()) {
    LanguageModel owner(config_with(c.cfg));
    init_model(owner, 13);
    const LanguageModel& m = owner;
    constexpr int kThreads = 4;
    std::vector<std::vector<int32_t>> want(kThreads), got(kThreads);
    for (int t = 0; t < kThreads; ++t) want[t] = greedy_pair(m, 200 + t);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        ready.fetch_add(1);
        while (ready.load() < kThreads) std::this_thread::yield();  // start together
        got[t] = greedy_pair(m, 200 + t);
      });
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; ++t) EXPECT_EQ(got[t], want[t]) << c.name << ": thread " << t;
    // The comparison can fail: the threads' prompts lead to different tokens.
    EXPECT_NE(want[0], want[1]) << c.name;
  }
}

// Two threads prefilling long prompts at the same moment (prefill takes no lock: its scratch is
// the state's) get the logits and states of prefilling one after the other.
TEST(Threads, TwoThreadsPrefillAtOnceAsSequentially) {
  for (const Case& c : cases()) {
    LanguageModel owner(config_with(c.cfg));
    init_model(owner, 17);
    const LanguageModel& m = owner;
    const int P = c.cfg.contains("max_position") ? 26 : 200;
    const Job jobs[2] = {Job{random_tokens(2 * (P + 3), m.config().vocab_size, 1), 2, P + 3, P},
                         Job{random_tokens(P + 3, m.config().vocab_size, 2), 1, P + 3, P - 7}};
    const std::vector<float> want[2] = {run_job(m, jobs[0]), run_job(m, jobs[1])};
    std::vector<float> got[2];
    std::atomic<int> ready{0};
    auto worker = [&](int t) {
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();
      got[t] = run_job(m, jobs[t]);
    };
    std::thread a(worker, 0), b(worker, 1);
    a.join();
    b.join();
    EXPECT_EQ(got[0], want[0]) << c.name;
    EXPECT_EQ(got[1], want[1]) << c.name;
  }
}

// States take the SSM dynamics of the parameter values at new_state: after the values change,
// a new state steps with the new ones (what a whole-sequence forward computes), not with
// dynamics cached from before.
TEST(Threads, NewStateAfterAParameterChangeStepsWithTheNewValues) {
  LanguageModel m(config_with({{"layers", {"h3", "s4d", "h3"}}, {"head_dim", 1}}));
  init_model(m, 5);
  const int64_t V = m.config().padded_vocab();
  const std::vector<int32_t> tok = {3, 17, 5, 9, 30, 2};
  const int L = static_cast<int>(tok.size());
  auto step_all = [&] {
    std::vector<float> out;
    ModelState st = m.new_state(1);
    for (int t = 0; t < L; ++t) {
      const float* lg = m.step(&tok[t], st);
      out.insert(out.end(), lg, lg + V);
    }
    return out;
  };
  auto max_rel_diff = [](const std::vector<float>& a, const std::vector<float>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      num = std::max(num, std::abs(static_cast<double>(a[i]) - b[i]));
      den = std::max(den, std::abs(static_cast<double>(b[i])));
    }
    return num / den;
  };
  const std::vector<float> before = step_all();
  // New dynamics for every diagonal SSM (log_dt, A, B, C), nothing else.
  Rng rng(8);
  for (auto& p : m.params()) {
    const bool ssm = p.name.find(".kernel.kernel.") != std::string::npos;
    if (!ssm) continue;
    float* w = p.param->value.data();
    for (int64_t i = 0; i < p.param->value.numel(); ++i)
      w[i] += static_cast<float>(0.3 * rng.normal());
  }
  const std::vector<float> after = step_all();
  const float* full = m.forward(tok.data(), 1, L);
  const std::vector<float> want(full, full + L * V);
  EXPECT_LE(max_rel_diff(after, want), 1e-4);
  EXPECT_GT(max_rel_diff(before, want), 1e-2);  // the change did matter
}

// The GPT-2 encoder's piece cache is shared by threads (one tokenizer feeds the corpus
// workers): encoding from two threads at once gives what one thread gives.
TEST(Threads, Gpt2EncodeFromTwoThreadsAsSequentially) {
  const std::string dir = find_gpt2_dir();
  if (dir.empty()) GTEST_SKIP() << "data/gpt2 missing: run scripts/get_gpt2_vocab.sh";
  std::vector<std::string> texts;
  Rng rng(3);
  const std::string words[] = {" the", " cat", "'s", " 42", "\n", " caf\xC3\xA9", "!!", " hello",
                               "world", " zzzzzz"};
  for (int t = 0; t < 8; ++t) {
    std::string s;
    for (int i = 0; i < 400; ++i) s += words[rng.below(10)];
    texts.push_back(s);
  }
  std::vector<std::vector<int32_t>> want;
  {
    const Gpt2Bpe fresh(dir);
    for (const auto& s : texts) want.push_back(fresh.encode(s));
  }
  const Gpt2Bpe tok(dir);  // a cold cache, filled by both threads at once
  std::vector<std::vector<int32_t>> got(texts.size());
  auto worker = [&](size_t first) {
    for (size_t i = first; i < texts.size(); i += 2) got[i] = tok.encode(texts[i]);
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
  EXPECT_EQ(got, want);
}
