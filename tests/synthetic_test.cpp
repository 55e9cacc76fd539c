#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

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

TEST(Synthetic, MqarQueriesEveryKeyOnceAndScoresOnlyItsValues) {
  SynthOptions o;
  o.task = SynthTask::MultiQueryRecall;
  o.vocab = 40;
  o.pairs = 6;
  o.seq_len = 36;
  o.n_train = 200;
  o.n_test = 20;
  o.seed = 5;
  SynthSplits s = make_synthetic(o);
  ASSERT_EQ(s.train.seq_len, 36);
  EXPECT_TRUE(s.train.loss_on_answers_only);
  const int n_keys = 19, noop = 39;
  std::set<int> first_query_at;
  for (int i = 0; i < s.train.n; ++i) {
    const int32_t* q = s.train.seq(i);
    const uint8_t* a = s.train.answers(i);
    std::map<int, int> value_of;
    std::set<int> values;
    for (int p = 0; p < 6; ++p) {
      ASSERT_LT(q[2 * p], n_keys);
      ASSERT_GE(q[2 * p + 1], n_keys);
      ASSERT_LT(q[2 * p + 1], 2 * n_keys);
      ASSERT_TRUE(value_of.emplace(q[2 * p], q[2 * p + 1]).second) << "keys are distinct";
      ASSERT_TRUE(values.insert(q[2 * p + 1]).second) << "values are distinct";
      ASSERT_FALSE(a[2 * p] || a[2 * p + 1]) << "the context is not scored";
    }
    std::set<int> queried;
    int answers = 0;
    for (int t = 12; t < 36; ++t) {
      if (q[t] == noop) {
        ASSERT_FALSE(a[t]);
        continue;
      }
      ASSERT_EQ((t - 12) % 2, 0) << "a query starts a two-token cell";
      ASSERT_TRUE(value_of.count(q[t])) << "only keys of the context are queried";
      ASSERT_TRUE(queried.insert(q[t]).second) << "each key once";
      if (queried.size() == 1) first_query_at.insert(t);
      EXPECT_EQ(q[t + 1], value_of[q[t]]);
      EXPECT_FALSE(a[t]);
      EXPECT_TRUE(a[t + 1]);
      ++answers;
      ++t;
    }
    EXPECT_EQ(answers, 6);
  }
  EXPECT_GT(first_query_at.size(), 3u) << "query positions vary";
  // Batches count only the answers.
  Batch b;
  synthetic_batch(s.train, 1, 0, 4, b);
  for (int r = 0; r < 4; ++r) {
    int counted = 0;
    for (int t = 0; t < b.L; ++t)
      if (b.targets[r * b.L + t] >= 0) {
        ++counted;
        EXPECT_LT(b.targets[r * b.L + t], 2 * n_keys);
        EXPECT_LT(b.tokens[r * b.L + t], n_keys) << "the target follows a query key";
      }
    EXPECT_EQ(counted, 6);
  }
}

TEST(Synthetic, AssociativeRecallPairsAndSizes) {
  SynthOptions o;
  o.task = SynthTask::AssociativeRecall;
  o.pairs = 5;
  o.vocab = 22;
  o.n_train = 100;
  o.n_test = 10;
  SynthSplits s = make_synthetic(o);
  ASSERT_EQ(s.train.seq_len, 13) << "2 * pairs + 3 when only the pairs are given";
  EXPECT_FALSE(s.train.loss_on_answers_only);
  for (int i = 0; i < s.train.n; ++i) {
    const int32_t* q = s.train.seq(i);
    for (int p = 0; p < 5; ++p) {
      EXPECT_LT(q[2 * p], 10);
      EXPECT_GE(q[2 * p + 1], 10);
    }
    EXPECT_EQ(q[10], 20);
    const uint8_t* a = s.train.answers(i);
    EXPECT_EQ(std::count(a, a + 13, 1), 1);
    EXPECT_EQ(a[12], 1);
  }
  o.seq_len = 40;  // padded in front with no-ops
  s = make_synthetic(o);
  EXPECT_EQ(s.train.seq(0)[0], 21);
  EXPECT_EQ(s.train.seq(0)[26], 21);
  EXPECT_NE(s.train.seq(0)[27], 21);
}

TEST(Synthetic, SizeOptionsAreCheckedWithTheirNames) {
  auto refused = [](SynthTask task, int vocab, int seq_len, int pairs, const std::string& words) {
    SynthOptions o;
    o.task = task;
    o.vocab = vocab;
    o.seq_len = seq_len;
    o.pairs = pairs;
    try {
      make_synthetic(o);
      ADD_FAILURE() << "accepted vocab " << vocab << " seq_len " << seq_len << " pairs " << pairs;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  refused(SynthTask::InductionHead, 0, 0, 3, "--pairs applies to");
  refused(SynthTask::InductionHead, 3, 0, 0, "--vocab");
  refused(SynthTask::InductionHead, 0, 4, 0, "--seq-len");
  refused(SynthTask::AssociativeRecall, 0, 10, 4, "need --seq-len >= 11");
  refused(SynthTask::MultiQueryRecall, 10, 0, 8, "--vocab must be at least 18");
  refused(SynthTask::MultiQueryRecall, 64, 20, 8, "--seq-len >= 32");
  refused(SynthTask::MultiQueryRecall, -1, 0, 0, "--vocab must be in");
  refused(SynthTask::AssociativeRecall, 0, 1 << 21, 0, "--seq-len must be in");
  SynthOptions big;
  big.task = SynthTask::InductionHead;
  big.seq_len = 1 << 20;
  big.n_train = 1000;
  EXPECT_THROW(make_synthetic(big), Error) << "a dataset past 2^28 tokens is refused before allocating";
  EXPECT_EQ(parse_synth_task("mqar"), SynthTask::MultiQueryRecall);
}

TEST(Synthetic, DefaultSizesAreThePapersAndZoologys) {
  for (auto [task, vocab, len] : {std::tuple{SynthTask::InductionHead, 20, 32},
                                  std::tuple{SynthTask::AssociativeRecall, 10, 20},
                                  std::tuple{SynthTask::MultiQueryRecall, 64, 64}}) {
    SynthOptions o;
    o.task = task;
    o.fill_defaults();
    EXPECT_EQ(o.vocab, vocab);
    EXPECT_EQ(o.seq_len, len);
  }
}
