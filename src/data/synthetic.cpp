#include "data/synthetic.h"

#include <algorithm>
#include <numeric>
#include <set>

#include "core/error.h"
#include "core/rng.h"

namespace hippo {

SynthTask parse_synth_task(const std::string& name) {
  if (name == "induction" || name == "induction_head") return SynthTask::InductionHead;
  if (name == "recall" || name == "associative_recall") return SynthTask::AssociativeRecall;
  fail("unknown synthetic task '", name, "' (expected induction_head or associative_recall)");
}

std::string synth_task_name(SynthTask t) {
  return t == SynthTask::InductionHead ? "induction_head" : "associative_recall";
}

void SynthOptions::fill_defaults() {
  if (vocab == 0) vocab = task == SynthTask::InductionHead ? 20 : 10;
  if (seq_len == 0) seq_len = task == SynthTask::InductionHead ? 32 : 20;
}

// A tiny stream per sequence generator: the state is advanced through Rng so sequences
// are reproducible from (seed, index).
static uint64_t draw(uint64_t& state, uint64_t n) {
  Rng r(state);
  state = r.next_u64();
  return r.below(n);
}

void induction_head_sequence(int vocab, int seq_len, uint64_t& st, int32_t* out) {
  const int n_sym = vocab - 2, trigger = vocab - 2;
  HIPPO_CHECK(n_sym >= 2, "induction head: vocab must be at least 4, got ", vocab);
  HIPPO_CHECK(seq_len >= 5, "induction head: seq_len must be at least 5, got ", seq_len);
  const int body = seq_len - 2;  // random symbols, then "=>" and the answer
  for (int i = 0; i < body; ++i) out[i] = static_cast<int32_t>(draw(st, n_sym));
  const int p = static_cast<int>(draw(st, body - 2));  // "=>" at p, x at p+1, both inside the body
  const int32_t x = static_cast<int32_t>(draw(st, n_sym));
  out[p] = trigger;
  out[p + 1] = x;
  out[body] = trigger;
  out[body + 1] = x;
}

void associative_recall_sequence(int vocab, int seq_len, uint64_t& st, int32_t* out) {
  const int n_sym = vocab - 2, trigger = vocab - 2, noop = vocab - 1;
  HIPPO_CHECK(n_sym >= 2 && n_sym % 2 == 0, "associative recall: vocab - 2 must be even and >= 2, got ",
              vocab);
  HIPPO_CHECK(seq_len >= 5, "associative recall: seq_len must be at least 5, got ", seq_len);
  const int n_keys = n_sym / 2;  // keys are 0..n_keys-1, values n_keys..n_sym-1
  std::vector<int32_t> value_of(n_keys);
  std::vector<int32_t> values(n_keys);
  std::iota(values.begin(), values.end(), n_keys);
  for (int i = n_keys - 1; i > 0; --i) std::swap(values[i], values[draw(st, i + 1)]);
  for (int k = 0; k < n_keys; ++k) value_of[k] = values[k];
  const int n_pairs = (seq_len - 3) / 2;
  const int pad = seq_len - 3 - 2 * n_pairs;  // no-op tokens in front, so lengths need not be odd
  int pos = 0;
  for (int i = 0; i < pad; ++i) out[pos++] = noop;
  std::vector<int32_t> used;
  for (int i = 0; i < n_pairs; ++i) {
    int32_t k = static_cast<int32_t>(draw(st, n_keys));
    out[pos++] = k;
    out[pos++] = value_of[k];
    used.push_back(k);
  }
  const int32_t query = used[draw(st, used.size())];
  out[pos++] = trigger;
  out[pos++] = query;
  out[pos++] = value_of[query];
}

SynthSplits make_synthetic(SynthOptions opt) {
  opt.fill_defaults();
  HIPPO_CHECK(opt.n_train > 0 && opt.n_test > 0, "synthetic: n_train and n_test must be positive");
  auto gen = opt.task == SynthTask::InductionHead ? induction_head_sequence : associative_recall_sequence;
  SynthSplits s;
  for (SynthDataset* d : {&s.train, &s.test}) {
    d->vocab = opt.vocab;
    d->seq_len = opt.seq_len;
  }
  uint64_t st = opt.seed * 0x9e3779b97f4a7c15ULL + 1;
  std::set<std::vector<int32_t>> seen;
  std::vector<int32_t> seq(opt.seq_len);
  for (int i = 0; i < opt.n_train; ++i) {
    gen(opt.vocab, opt.seq_len, st, seq.data());
    s.train.tokens.insert(s.train.tokens.end(), seq.begin(), seq.end());
    seen.insert(seq);
  }
  s.train.n = opt.n_train;
  // Keep the test set disjoint from training; give up on a tiny space rather than loop forever.
  int attempts = 0;
  while (s.test.n < opt.n_test) {
    gen(opt.vocab, opt.seq_len, st, seq.data());
    HIPPO_CHECK(++attempts < 1000 * opt.n_test + 100000,
                "synthetic: cannot draw ", opt.n_test, " test sequences unseen in training");
    if (seen.count(seq)) continue;
    s.test.tokens.insert(s.test.tokens.end(), seq.begin(), seq.end());
    ++s.test.n;
  }
  return s;
}

}  // namespace hippo
