// evaluate_synthetic scores exactly the answer tokens: a model whose logits are all equal
// predicts id 0 everywhere (argmax takes the lowest id on ties), so its accuracy is the
// fraction of answers that are 0, counted here by hand.
#include <gtest/gtest.h>

#include "model_cases.h"
#include "train/synthetic_eval.h"

using namespace hippo;

TEST(SyntheticEval, AccuracyCountsEveryAnswerAndNothingElse) {
  LanguageModel m(test_models::config_with({{"layers", {"h3", "attention"}}}));
  m.init(1);
  for (auto& p : m.params()) std::fill(p.param->value.data(), p.param->value.data() + p.param->value.numel(), 0.0f);
  SynthDataset d;
  d.vocab = 41;
  d.seq_len = 6;
  d.n = 3;
  d.tokens = {5, 0, 7, 0, 3, 9,   // answers at 1 (0) and 3 (0): 2 right
              0, 4, 0, 2, 0, 1,   // answers at 2 (0) and 5 (1): 1 right; the 0s at 4 do not count
              8, 8, 8, 8, 8, 0};  // answer at 5 (0): 1 right
  d.answer = {0, 1, 0, 1, 0, 0,
              0, 0, 1, 0, 0, 1,
              0, 0, 0, 0, 0, 1};
  d.loss_on_answers_only = true;
  EvalResult r = evaluate_synthetic(m, d, 2);  // two batches: 2 + 1 sequences
  EXPECT_DOUBLE_EQ(r.metrics["acc"], 4.0 / 5.0);
  // Equal logits over the padded vocabulary: the loss of every counted target is log(V).
  EXPECT_NEAR(r.metrics["loss"], std::log(static_cast<double>(m.config().padded_vocab())), 1e-5);
  d.answer = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1};  // the last token only
  EXPECT_DOUBLE_EQ(evaluate_synthetic(m, d, 250).metrics["acc"], 1.0 / 3.0);
}
