// LanguageModel's contract with its callers (issue 11 item 19): it cannot be copied or moved
// (its parameter list points into itself), and backward() only propagates the gradient of the
// loss of the last forward, never one left over from an earlier step.
#include <gtest/gtest.h>

#include <concepts>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "models/lm.h"
#include "test_util.h"

using namespace hippo;
using hippo::test_util::error_of;

// A moved (or copied) model would keep pointers into the object it came from: params() names
// the source's tensors, and training the copy would update a dead object.
static_assert(!std::is_copy_constructible_v<LanguageModel>);
static_assert(!std::is_copy_assignable_v<LanguageModel>);
static_assert(!std::is_move_constructible_v<LanguageModel>);
static_assert(!std::is_move_assignable_v<LanguageModel>);

namespace {

ModelConfig tiny_config() {
  return ModelConfig::from_json({{"vocab_size", 29}, {"d_model", 16}, {"n_layer", 2},
                                 {"d_state", 8}, {"attn_heads", 2},
                                 {"layers", {"h3", "attention"}}},
                                "test");
}

std::vector<int32_t> tokens(int n, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng.below(V));
  return t;
}

std::vector<float> all_grads(const LanguageModel& m) {
  std::vector<float> g;
  for (const auto& p : m.params()) g.insert(g.end(), p.param->grad.data(),
                                            p.param->grad.data() + p.param->grad.numel());
  return g;
}

}  // namespace

TEST(LmContract, BackwardNeedsTheGradientOfTheLastForward) {
  LanguageModel m(tiny_config());
  m.init(1);
  const int B = 2, L = 6, V = m.config().vocab_size;
  const auto x1 = tokens(B * L, V, 2), y1 = tokens(B * L, V, 3);
  const auto x2 = tokens(B * L, V, 4), y2 = tokens(B * L, V, 5);

  // Nothing to propagate before any loss.
  EXPECT_NE(error_of([&] { m.backward(); }).find("no gradient"), std::string::npos);

  // A training step leaves a gradient behind ...
  m.zero_grad();
  m.forward(x1.data(), B, L);
  m.loss(y1.data());
  m.backward();
  // ... which an evaluation forward + loss(want_grad = false) must not make usable again: it
  // would add the first batch's output gradient through the second batch's activations.
  m.zero_grad();
  m.forward(x2.data(), B, L);
  m.loss(y2.data(), /*want_grad=*/false);
  const std::string msg = error_of([&] { m.backward(); });
  EXPECT_NE(msg.find("want_grad"), std::string::npos) << msg;
  for (float g : all_grads(m)) ASSERT_EQ(g, 0.0f);  // nothing was added

  // forward() alone replaces the activations: the old loss's gradient no longer applies.
  m.forward(x1.data(), B, L);
  m.loss(y1.data());
  m.forward(x2.data(), B, L);
  EXPECT_NE(error_of([&] { m.backward(); }).find("no gradient"), std::string::npos);

  // The proper sequence still works, and equals a model that never saw the errors above.
  m.zero_grad();
  m.forward(x2.data(), B, L);
  m.loss(y2.data());
  EXPECT_NO_THROW(m.backward());
  LanguageModel fresh(tiny_config());
  fresh.init(1);
  fresh.zero_grad();
  fresh.forward(x2.data(), B, L);
  fresh.loss(y2.data());
  fresh.backward();
  EXPECT_EQ(all_grads(m), all_grads(fresh));
}

// Generation is const (issue 12): its scratch is the state's, so prefill and steps between a
// training forward and its backward change nothing the backward uses.
static_assert(requires(const LanguageModel& m, const int32_t* t, ModelState& s) {
  { m.prefill(t, 1, 1, s) } -> std::same_as<const float*>;
  { m.step(t, s) } -> std::same_as<const float*>;
});

TEST(LmContract, GenerationBetweenForwardAndBackwardChangesNothing) {
  for (const char* mixer : {"h3", "attention", "s4d"}) {
    const ModelConfig cfg = ModelConfig::from_json(
        {{"vocab_size", 29}, {"d_model", 16}, {"n_layer", 2}, {"d_state", 8}, {"attn_heads", 2},
         {"layers", {mixer, "h3"}}},
        "test");
    const int B = 2, L = 6, V = cfg.vocab_size;
    const auto x = tokens(B * L, V, 2), y = tokens(B * L, V, 3), p = tokens(3 * 9, V, 4);
    auto grads = [&](bool generate) {
      LanguageModel m(cfg);
      m.init(1);
      m.zero_grad();
      const float* lg = m.forward(x.data(), B, L);
      const std::vector<float> logits(lg, lg + B * L * m.config().padded_vocab());
      m.loss(y.data());
      if (generate) {  // a longer prompt and another batch than the training forward
        ModelState st = m.new_state(3);
        m.prefill(p.data(), 3, 9, st);
        m.step(p.data(), st);
        EXPECT_EQ(std::vector<float>(m.logits(), m.logits() + logits.size()), logits) << mixer;
      }
      m.backward();
      return all_grads(m);
    };
    const std::vector<float> want = grads(false);
    EXPECT_EQ(grads(true), want) << mixer;
  }
}

TEST(LmContract, LossNeedsAForward) {
  LanguageModel m(tiny_config());
  m.init(1);
  const std::vector<int32_t> y(4, 1);
  EXPECT_NE(error_of([&] { m.loss(y.data()); }).find("forward"), std::string::npos);
}
