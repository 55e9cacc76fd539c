// MixerState::step_bytes, the per-step bytes besides the weights that the all-bytes memory bound
// of `hippo bench generate` counts: written out here from the spec's state shapes (shift SSM:
// d x N reals; diagonal SSM: p x p x H x N/2 complex modes; attention: keys and values of every
// cached token), not from the state's own vectors.
#include <gtest/gtest.h>

#include <vector>

#include "models/lm.h"
#include "nn/h3.h"
#include "model_cases.h"

using namespace hippo;
using test_models::config_with;
using test_models::init_model;
using test_models::random_tokens;

namespace {

constexpr int kB = 2, kPrompt = 5;

ModelState after_prompt(const LanguageModel& m, int steps) {
  const std::vector<int32_t> tok = random_tokens(kB * (kPrompt + steps), 41, 3);
  ModelState st = m.new_state(kB);
  m.prefill(tok.data(), kB, kPrompt, st);
  for (int t = 0; t < steps; ++t) m.step(tok.data() + kB * (kPrompt + t), st);
  return st;
}

}  // namespace

// The shift SSM after a prompt is kept as its ring of the last N inputs (ssm/shift.h): a step
// reads the ring and writes one input per channel. Given as s (a state loaded from a file
// without a ring), a step reads and writes s and writes the input into the ring, until N steps
// later the ring takes over. The diagonal SSM's state is read and written whole.
TEST(StepBytes, H3StateBytesOfEachForm) {
  for (int p : {1, 2}) {
    const int d = 32, N = 8;
    LanguageModel m(config_with({{"layers", {"h3", "h3"}}, {"d_model", d}, {"head_dim", p}}));
    init_model(m, 1);
    ModelState st = after_prompt(m, 0);
    const int64_t shift = int64_t{kB} * d * N * 4;                      // fp32 reals
    const int64_t inputs = int64_t{kB} * d * 4;                         // one per channel
    const int64_t diag = int64_t{kB} * p * p * (d / p) * (N / 2) * 8;   // complex<float>
    for (const auto& l : st.layers)
      EXPECT_EQ(l->step_bytes(), shift + inputs + 2 * diag) << "p " << p;
    for (const auto& l : st.layers) static_cast<H3State&>(*l).shift_age = 0;  // s is the state
    for (const auto& l : st.layers)
      EXPECT_EQ(l->step_bytes(), 2 * shift + inputs + 2 * diag) << "p " << p;
  }
}

TEST(StepBytes, S4DStateIsReadAndWrittenWhole) {
  LanguageModel m(config_with({{"layers", {"s4d", "s4d"}}}));
  init_model(m, 2);
  ModelState st = after_prompt(m, 0);
  for (const auto& l : st.layers) EXPECT_EQ(l->step_bytes(), 2 * int64_t{kB} * 16 * 4 * 8);
}

// Only the cached tokens count, not the capacity the cache has grown to, in fp32 and bf16.
TEST(StepBytes, KvCacheCountsCachedTokensOnly) {
  for (KvCacheDType dt : {KvCacheDType::F32, KvCacheDType::BF16}) {
    LanguageModel m(config_with({{"layers", {"attention", "attention"}}}));
    init_model(m, 3);
    m.set_kv_cache(dt);
    const int elem = dt == KvCacheDType::F32 ? 4 : 2;
    for (int steps : {0, 1, 7}) {
      ModelState st = after_prompt(m, steps);
      const int64_t tokens = kPrompt + steps;
      for (const auto& l : st.layers)
        EXPECT_EQ(l->step_bytes(), int64_t{kB} * tokens * 16 * 2 * elem)
            << kv_cache_name(dt) << " after " << steps << " steps";
    }
  }
}
