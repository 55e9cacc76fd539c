// Batched decoding of several states at once (LanguageModel::step_many, Mixer::step_many):
// states at different positions and of different batches, stepped together, give bit for bit
// the logits of stepping each alone (the dense products compute every row independently of
// the others: gemm_small for up to 16 rows), for every model kind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "core/rng.h"
#include "kernels/gemm_small.h"
#include "models/lm.h"
#include "model_cases.h"
#include "test_util.h"

using namespace hippo;
using hippo::test_util::error_of;

// States are kept in vectors: moving one must not throw (nor copy).
static_assert(std::is_nothrow_move_constructible_v<ModelState>);

namespace {

using test_models::Case;
using test_models::cases;
using test_models::config_with;
using test_models::init_model;
using test_models::random_tokens;

// A sequence group: its batch, prompt length (0: no prefill, stepping from a fresh state) and
// the steps taken alone before the joint steps, so that the states sit at different positions.
struct Group {
  int batch, prompt, warmup;
};
const std::vector<Group> kGroups = {{1, 5, 2}, {2, 9, 0}, {1, 1, 4}, {1, 0, 3}};
constexpr int kJointSteps = 6;

// Tokens of group g's sequence b at step t (prompt positions first).
int32_t token(const std::vector<int32_t>& pool, int g, int b, int t) {
  return pool[static_cast<size_t>((g * 7 + b * 3 + t * 5) % static_cast<int>(pool.size()))];
}

// Group g's state after its prompt and warm-up steps.
ModelState prepared(const LanguageModel& m, const std::vector<int32_t>& pool, int g) {
  const Group& gr = kGroups[g];
  ModelState st = m.new_state(gr.batch);
  if (gr.prompt > 0) {
    std::vector<int32_t> p;
    for (int b = 0; b < gr.batch; ++b)
      for (int t = 0; t < gr.prompt; ++t) p.push_back(token(pool, g, b, t));
    m.prefill(p.data(), gr.batch, gr.prompt, st);
  }
  std::vector<int32_t> col(static_cast<size_t>(gr.batch));
  for (int t = gr.prompt; t < gr.prompt + gr.warmup; ++t) {
    for (int b = 0; b < gr.batch; ++b) col[b] = token(pool, g, b, t);
    m.step(col.data(), st);
  }
  return st;
}

int first_joint(int g) { return kGroups[g].prompt + kGroups[g].warmup; }

// Logits of every joint step of every group, stepping each group's state alone.
std::vector<std::vector<float>> alone(const LanguageModel& m, const std::vector<int32_t>& pool) {
  const int64_t V = m.config().padded_vocab();
  std::vector<std::vector<float>> out(kGroups.size());
  for (size_t g = 0; g < kGroups.size(); ++g) {
    ModelState st = prepared(m, pool, static_cast<int>(g));
    std::vector<int32_t> col(static_cast<size_t>(kGroups[g].batch));
    for (int s = 0; s < kJointSteps; ++s) {
      for (int b = 0; b < kGroups[g].batch; ++b)
        col[b] = token(pool, static_cast<int>(g), b, first_joint(static_cast<int>(g)) + s);
      const float* lg = m.step(col.data(), st);
      out[g].insert(out[g].end(), lg, lg + kGroups[g].batch * V);
    }
  }
  return out;
}

// The same steps with all groups' states in one step_many per step, in the given order.
std::vector<std::vector<float>> together(const LanguageModel& m, const std::vector<int32_t>& pool,
                                         const std::vector<int>& order) {
  const int64_t V = m.config().padded_vocab();
  std::vector<ModelState> states;
  for (size_t g = 0; g < kGroups.size(); ++g) states.push_back(prepared(m, pool, static_cast<int>(g)));
  std::vector<ModelState*> ptrs;
  for (int g : order) ptrs.push_back(&states[g]);
  std::vector<std::vector<float>> out(kGroups.size());
  for (int s = 0; s < kJointSteps; ++s) {
    std::vector<int32_t> tokens;
    for (int g : order)
      for (int b = 0; b < kGroups[g].batch; ++b)
        tokens.push_back(token(pool, g, b, first_joint(g) + s));
    m.step_many(tokens.data(), ptrs);
    for (int g : order) {
      EXPECT_EQ(states[g].position, first_joint(g) + s + 1);
      const float* lg = states[g].logits.data();  // each state's logits are its own
      out[g].insert(out[g].end(), lg, lg + kGroups[g].batch * V);
    }
  }
  return out;
}

// Bit for bit where gemm() runs the small-rows kernel (AVX-512), which computes each row on
// its own; elsewhere (oneDNN, whose blocking may depend on the row count) within 1e-6 of the
// largest logit and the same greedy token for every row.
void expect_same(const std::vector<float>& got, const std::vector<float>& want, int64_t PV,
                 int V, const std::string& what) {
  if (small_rows_kernel_available()) {
    EXPECT_EQ(got, want) << what;
    return;
  }
  double err = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err = std::max(err, std::abs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::abs(static_cast<double>(want[i])));
  }
  EXPECT_LE(err, 1e-6 * scale) << what;
  for (size_t r = 0; r * PV < got.size(); ++r) {
    const float* a = got.data() + r * PV;
    const float* b = want.data() + r * PV;
    EXPECT_EQ(std::max_element(a, a + V) - a, std::max_element(b, b + V) - b) << what;
  }
}

}  // namespace

TEST(StepMany, EqualsSteppingEachStateAloneForEveryModelKind) {
  for (const Case& c : cases()) {
    LanguageModel m(config_with(c.cfg));
    init_model(m, 5);
    const LanguageModel& cm = m;
    const auto pool = random_tokens(97, m.config().vocab_size, 17);
    const auto want = alone(cm, pool);
    for (const std::vector<int>& order : {std::vector<int>{0, 1, 2, 3}, std::vector<int>{3, 2, 1, 0},
                                          std::vector<int>{2, 0}}) {
      const auto got = together(cm, pool, order);
      for (int g : order) {
        ASSERT_EQ(got[g].size(), want[g].size()) << c.name;
        expect_same(got[g], want[g], m.config().padded_vocab(), m.config().vocab_size,
                    std::string(c.name) + ": group " + std::to_string(g) + ", first state " +
                        std::to_string(order[0]));
      }
    }
    // The comparison can fail: the groups' logits differ from one another.
    EXPECT_NE(std::vector<float>(want[0].begin(), want[0].begin() + m.config().padded_vocab()),
              std::vector<float>(want[2].begin(), want[2].begin() + m.config().padded_vocab()))
        << c.name;
  }
}

TEST(StepMany, RefusesRepeatedStatesAndPositionsPastTheEndWithoutChangingAny) {
  LanguageModel m(config_with({{"layers", {"attention", "h3"}}, {"learned_pos", true},
                               {"max_position", 4}}));
  init_model(m, 2);
  ModelState a = m.new_state(1), b = m.new_state(1);
  std::vector<int32_t> p = {1, 2, 3, 4};
  m.prefill(p.data(), 1, 4, a);  // at max_position: no further step
  std::vector<int32_t> two = {5, 6};
  std::vector<ModelState*> same = {&b, &b};
  EXPECT_NE(error_of([&] { m.step_many(two.data(), same); }).find("twice"), std::string::npos);
  std::vector<ModelState*> both = {&b, &a};
  EXPECT_NE(error_of([&] { m.step_many(two.data(), both); }).find("max_position"),
            std::string::npos);
  EXPECT_EQ(a.position, 4);
  EXPECT_EQ(b.position, 0);
  std::vector<ModelState*> none;
  EXPECT_THROW(m.step_many(two.data(), none), Error);
}

// More stacked rows than the small-rows kernel takes (> 16): the stacked products run through
// oneDNN, whose blocking depends on the row count, so agreement is to rounding (1e-6 of the
// largest logit) with the same greedy token for every row, not bit for bit.
TEST(StepMany, ManyRowsAgreeWithSteppingAloneToRounding) {
  LanguageModel m(config_with({{"layers", {"h3", "attention", "s4d"}}, {"n_layer", 3},
                               {"rotary_dim", 4}}));
  init_model(m, 6);
  const int64_t PV = m.config().padded_vocab();
  const int V = m.config().vocab_size, kStates = 7, kB = 3, kSteps = 4;
  const auto pool = random_tokens(kStates * kB * 40, V, 23);
  auto prompt_of = [&](int s) {  // state s: batch kB, prompt of 1 + 2s tokens
    const int P = 1 + 2 * s;
    return std::vector<int32_t>(pool.begin() + s * kB * 40, pool.begin() + s * kB * 40 + kB * P);
  };
  auto col = [&](int s, int t) {
    std::vector<int32_t> c(kB);
    for (int b = 0; b < kB; ++b) c[b] = pool[(s * 131 + b * 17 + t * 7) % pool.size()];
    return c;
  };
  std::vector<ModelState> alone, joint;
  for (int s = 0; s < kStates; ++s) {
    const auto p = prompt_of(s);
    alone.push_back(m.new_state(kB));
    joint.push_back(m.new_state(kB));
    m.prefill(p.data(), kB, 1 + 2 * s, alone.back());
    m.prefill(p.data(), kB, 1 + 2 * s, joint.back());
  }
  std::vector<ModelState*> ptrs;
  for (auto& st : joint) ptrs.push_back(&st);
  double err = 0, scale = 0;
  int argmax_differs = 0;
  for (int t = 0; t < kSteps; ++t) {
    std::vector<int32_t> all;
    for (int s = 0; s < kStates; ++s) {
      const auto c = col(s, t);
      all.insert(all.end(), c.begin(), c.end());
      m.step(c.data(), alone[s]);
    }
    m.step_many(all.data(), ptrs);
    for (int s = 0; s < kStates; ++s)
      for (int b = 0; b < kB; ++b) {
        const float* a = alone[s].logits.data() + b * PV;
        const float* j = joint[s].logits.data() + b * PV;
        for (int v = 0; v < V; ++v) {
          err = std::max(err, std::abs(static_cast<double>(a[v]) - j[v]));
          scale = std::max(scale, std::abs(static_cast<double>(a[v])));
        }
        argmax_differs += (std::max_element(a, a + V) - a) != (std::max_element(j, j + V) - j);
      }
  }
  std::printf("[ step_many ] %d rows: max abs diff %.3g (largest logit %.3g)\n", kStates * kB,
              err, scale);
  EXPECT_LE(err, 1e-6 * scale);
  EXPECT_EQ(argmax_differs, 0);
}
