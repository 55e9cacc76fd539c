#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "data/synthetic.h"
#include "data/synthetic_batches.h"

using namespace hippo;

TEST(Synthetic, InductionHeadAnswerIsTheTokenAfterTheFirstTrigger) {
  SynthOptions o;
  o.task = SynthTask::InductionHead;
  o.n_train = 300;
  o.n_test = 50;
  o.seed = 3;
  SynthSplits s = make_synthetic(o);
  ASSERT_EQ(s.train.vocab, 20);
  ASSERT_EQ(s.train.seq_len, 32);
  const int trig = 18;
  std::set<int> positions;
  for (const SynthDataset* d : {&s.train, &s.test})
    for (int i = 0; i < d->n; ++i) {
      const int32_t* q = d->seq(i);
      // Exactly two triggers: one in the body, one before the answer.
      std::vector<int> at;
      for (int t = 0; t < 32; ++t) {
        ASSERT_GE(q[t], 0);
        ASSERT_LT(q[t], 19);  // the no-op is unused here
        if (q[t] == trig) at.push_back(t);
      }
      ASSERT_EQ(at.size(), 2u);
      ASSERT_EQ(at[1], 30);
      ASSERT_LE(at[0], 27);
      positions.insert(at[0]);
      EXPECT_EQ(q[31], q[at[0] + 1]) << "answer must be the symbol after the first trigger";
    }
  EXPECT_GT(positions.size(), 20u) << "trigger position should vary over [0, 27]";
}

TEST(Synthetic, AssociativeRecallAnswerIsTheQueriedKeysValue) {
  SynthOptions o;
  o.task = SynthTask::AssociativeRecall;
  o.n_train = 300;
  o.n_test = 50;
  SynthSplits s = make_synthetic(o);
  ASSERT_EQ(s.train.seq_len, 20);
  const int n_keys = 4, trig = 8, noop = 9;
  for (int i = 0; i < s.train.n; ++i) {
    const int32_t* q = s.train.seq(i);
    int t = 0;
    while (q[t] == noop) ++t;
    int value_of[4] = {-1, -1, -1, -1};
    for (; t < 17; t += 2) {
      ASSERT_LT(q[t], n_keys) << "keys come first in a pair";
      ASSERT_GE(q[t + 1], n_keys);
      ASSERT_LT(q[t + 1], 2 * n_keys);
      if (value_of[q[t]] >= 0) {
        ASSERT_EQ(value_of[q[t]], q[t + 1]) << "one map per sequence";
      }
      value_of[q[t]] = q[t + 1];
    }
    ASSERT_EQ(q[17], trig);
    ASSERT_GE(value_of[q[18]], 0) << "the queried key occurred";
    EXPECT_EQ(q[19], value_of[q[18]]);
  }
}

TEST(Synthetic, DeterministicAndTestDisjointFromTrain) {
  for (auto task : {SynthTask::InductionHead, SynthTask::AssociativeRecall}) {
    SynthOptions o;
    o.task = task;
    o.seed = 11;
    SynthSplits a = make_synthetic(o), b = make_synthetic(o);
    EXPECT_EQ(a.train.tokens, b.train.tokens);
    EXPECT_EQ(a.test.tokens, b.test.tokens);
    o.seed = 12;
    EXPECT_NE(make_synthetic(o).train.tokens, a.train.tokens);
    std::set<std::vector<int32_t>> train;
    for (int i = 0; i < a.train.n; ++i)
      train.insert(std::vector<int32_t>(a.train.seq(i), a.train.seq(i) + a.train.seq_len));
    for (int i = 0; i < a.test.n; ++i)
      EXPECT_FALSE(train.count(std::vector<int32_t>(a.test.seq(i), a.test.seq(i) + a.test.seq_len)));
  }
}

TEST(Synthetic, BatchesShiftTargetsAndCoverAnEpoch) {
  SynthOptions o;
  o.n_train = 40;
  o.n_test = 10;
  SynthSplits s = make_synthetic(o);
  Batch b;
  std::multiset<std::vector<int32_t>> seen;
  for (int k = 0; k < 5; ++k) {  // 5 batches of 8 = one epoch of 40
    synthetic_batch(s.train, 7, k, 8, b);
    ASSERT_EQ(b.L, 31);
    for (int r = 0; r < 8; ++r) {
      for (int t = 0; t + 1 < b.L; ++t) ASSERT_EQ(b.targets[r * b.L + t], b.tokens[r * b.L + t + 1]);
      std::vector<int32_t> seq(b.tokens.begin() + r * b.L, b.tokens.begin() + (r + 1) * b.L);
      seq.push_back(b.targets[r * b.L + b.L - 1]);
      seen.insert(seq);
    }
  }
  std::multiset<std::vector<int32_t>> all;
  for (int i = 0; i < s.train.n; ++i)
    all.insert(std::vector<int32_t>(s.train.seq(i), s.train.seq(i) + s.train.seq_len));
  EXPECT_EQ(seen, all) << "an epoch visits every training sequence once";
  Batch again;
  synthetic_batch(s.train, 7, 3, 8, again);
  synthetic_batch(s.train, 7, 3, 8, b);
  EXPECT_EQ(again.tokens, b.tokens);
}

TEST(Synthetic, BadOptionsAreRefused) {
  EXPECT_THROW(parse_synth_task("copying"), Error);
  SynthOptions o;
  o.task = SynthTask::AssociativeRecall;
  o.vocab = 7;  // 5 ordinary symbols cannot split into keys and values
  EXPECT_THROW(make_synthetic(o), Error);
}
