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
  if (name == "mqar" || name == "multi_query_recall") return SynthTask::MultiQueryRecall;
  fail("unknown synthetic task '", name, "' (expected ", synth_task_names(), ")");
}

std::string synth_task_name(SynthTask t) {
  switch (t) {
    case SynthTask::InductionHead: return "induction_head";
    case SynthTask::AssociativeRecall: return "associative_recall";
    case SynthTask::MultiQueryRecall: return "mqar";
  }
  return "?";
}

std::string synth_task_names() { return "induction_head, associative_recall, mqar"; }

namespace {

constexpr int kMaxVocab = 1 << 16;
constexpr int kMaxSeqLen = 1 << 20;
constexpr int kDefaultMqarPairs = 8;

}  // namespace

void SynthOptions::fill_defaults() {
  HIPPO_CHECK(vocab >= 0 && vocab <= kMaxVocab, "--vocab must be in [4, ", kMaxVocab,
              "] (0: the task's default), got ", vocab);
  HIPPO_CHECK(seq_len >= 0 && seq_len <= kMaxSeqLen, "--seq-len must be in [5, ", kMaxSeqLen,
              "] (0: the task's default), got ", seq_len);
  HIPPO_CHECK(pairs >= 0 && pairs <= kMaxSeqLen / 2, "--pairs must be in [1, ", kMaxSeqLen / 2,
              "] (0: the task's default), got ", pairs);
  switch (task) {
    case SynthTask::InductionHead:
      HIPPO_CHECK(pairs == 0, "--pairs applies to associative_recall and mqar, not induction_head");
      if (vocab == 0) vocab = 20;
      if (seq_len == 0) seq_len = 32;
      HIPPO_CHECK(vocab >= 4, "induction_head: --vocab must be at least 4, got ", vocab);
      HIPPO_CHECK(seq_len >= 5, "induction_head: --seq-len must be at least 5, got ", seq_len);
      break;
    case SynthTask::AssociativeRecall:
      if (vocab == 0) vocab = 10;
      if (seq_len == 0) seq_len = pairs > 0 ? 2 * pairs + 3 : 20;
      HIPPO_CHECK(vocab >= 4 && (vocab - 2) % 2 == 0,
                  "associative_recall: --vocab minus the trigger and no-op must split into keys "
                  "and values (even, at least 4), got ", vocab);
      HIPPO_CHECK(seq_len >= 5, "associative_recall: --seq-len must be at least 5, got ", seq_len);
      if (pairs == 0) pairs = (seq_len - 3) / 2;
      HIPPO_CHECK(2 * pairs + 3 <= seq_len, "associative_recall: ", pairs, " pairs need --seq-len >= ",
                  2 * pairs + 3, " (pairs, trigger, query, answer), got ", seq_len);
      break;
    case SynthTask::MultiQueryRecall: {
      if (vocab == 0) vocab = 64;
      if (pairs == 0) pairs = kDefaultMqarPairs;
      if (seq_len == 0) seq_len = std::max(64, 4 * pairs);
      HIPPO_CHECK(vocab >= 4 && (vocab - 2) % 2 == 0,
                  "mqar: --vocab minus the trigger and no-op must split into keys and values (even, "
                  "at least 4), got ", vocab);
      const int n_keys = (vocab - 2) / 2;
      HIPPO_CHECK(pairs <= n_keys, "mqar: ", pairs, " pairs need distinct keys and values: --vocab must be "
                  "at least ", 2 * pairs + 2, ", got ", vocab);
      HIPPO_CHECK(seq_len >= 4 * pairs, "mqar: ", pairs, " pairs and as many queries need --seq-len >= ",
                  4 * pairs, ", got ", seq_len);
      break;
    }
  }
  // Checked here, with the sizes, so that a study refuses it before any run starts.
  HIPPO_CHECK(static_cast<int64_t>(n_train) + n_test >= 1 &&
                  (static_cast<int64_t>(n_train) + n_test) * seq_len <= (int64_t{1} << 28),
              "synthetic: ", n_train, " + ", n_test, " sequences of ", seq_len,
              " tokens exceed the limit of 2^28 tokens; use fewer sequences or shorter ones");
}

// A tiny stream per sequence generator: the state is advanced through Rng so sequences
// are reproducible from (seed, index).
static uint64_t draw(uint64_t& state, uint64_t n) {
  Rng r(state);
  state = r.next_u64();
  return r.below(n);
}

static void shuffle(std::vector<int32_t>& v, uint64_t& st) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[draw(st, i)]);
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

// `n_pairs` (key, value) pairs after no-op padding, then "=>", a key that occurred, its value.
static void associative_recall_pairs(int vocab, int seq_len, int n_pairs, uint64_t& st, int32_t* out) {
  const int n_sym = vocab - 2, trigger = vocab - 2, noop = vocab - 1;
  HIPPO_CHECK(n_sym >= 2 && n_sym % 2 == 0, "associative recall: vocab - 2 must be even and >= 2, got ",
              vocab);
  HIPPO_CHECK(n_pairs >= 1 && 2 * n_pairs + 3 <= seq_len, "associative recall: ", n_pairs,
              " pairs do not fit in ", seq_len, " tokens");
  const int n_keys = n_sym / 2;  // keys are 0..n_keys-1, values n_keys..n_sym-1
  std::vector<int32_t> values(n_keys);
  std::iota(values.begin(), values.end(), n_keys);
  for (int i = n_keys - 1; i > 0; --i) std::swap(values[i], values[draw(st, i + 1)]);
  const std::vector<int32_t>& value_of = values;
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

void associative_recall_sequence(int vocab, int seq_len, uint64_t& st, int32_t* out) {
  associative_recall_pairs(vocab, seq_len, (seq_len - 3) / 2, st, out);
}

// Zoology's multi-query associative recall, in next-token form: `pairs` (key, value) pairs with
// distinct keys and distinct values, then a query section of no-ops in which every key appears
// once, in random order and at random even offsets, followed by its value (the answers).
static void mqar_sequence(int vocab, int seq_len, int pairs, uint64_t& st, int32_t* out, uint8_t* answer) {
  const int n_keys = (vocab - 2) / 2, noop = vocab - 1;
  std::vector<int32_t> keys(n_keys), values(n_keys);
  std::iota(keys.begin(), keys.end(), 0);
  std::iota(values.begin(), values.end(), n_keys);
  shuffle(keys, st);
  shuffle(values, st);
  for (int i = 0; i < seq_len; ++i) out[i] = noop;
  for (int i = 0; i < pairs; ++i) {
    out[2 * i] = keys[i];
    out[2 * i + 1] = values[i];
  }
  // Query slots: 2-token cells of the rest; `pairs` of them chosen, each key queried once.
  const int cells = (seq_len - 2 * pairs) / 2;
  std::vector<int32_t> cell(cells);
  std::iota(cell.begin(), cell.end(), 0);
  for (int i = 0; i < pairs; ++i) std::swap(cell[i], cell[i + draw(st, cells - i)]);
  std::vector<int32_t> order(pairs);
  std::iota(order.begin(), order.end(), 0);
  shuffle(order, st);
  for (int i = 0; i < pairs; ++i) {
    const int at = 2 * pairs + 2 * cell[i];
    out[at] = keys[order[i]];
    out[at + 1] = values[order[i]];
    if (answer) answer[at + 1] = 1;
  }
}

void synthetic_sequence(const SynthOptions& o, uint64_t& st, int32_t* out, uint8_t* answer) {
  if (answer) std::fill(answer, answer + o.seq_len, uint8_t{0});
  switch (o.task) {
    case SynthTask::InductionHead:
      induction_head_sequence(o.vocab, o.seq_len, st, out);
      break;
    case SynthTask::AssociativeRecall:
      associative_recall_pairs(o.vocab, o.seq_len, o.pairs, st, out);
      break;
    case SynthTask::MultiQueryRecall:
      mqar_sequence(o.vocab, o.seq_len, o.pairs, st, out, answer);
      return;
  }
  if (answer) answer[o.seq_len - 1] = 1;
}

SynthSplits make_synthetic(SynthOptions opt) {
  opt.fill_defaults();
  HIPPO_CHECK(opt.n_train > 0 && opt.n_test > 0, "synthetic: n_train and n_test must be positive");
  SynthSplits s;
  for (SynthDataset* d : {&s.train, &s.test}) {
    d->vocab = opt.vocab;
    d->seq_len = opt.seq_len;
    d->loss_on_answers_only = opt.task == SynthTask::MultiQueryRecall;
  }
  uint64_t st = opt.seed * 0x9e3779b97f4a7c15ULL + 1;
  std::set<std::vector<int32_t>> seen;
  std::vector<int32_t> seq(opt.seq_len);
  std::vector<uint8_t> ans(opt.seq_len);
  for (int i = 0; i < opt.n_train; ++i) {
    synthetic_sequence(opt, st, seq.data(), ans.data());
    s.train.tokens.insert(s.train.tokens.end(), seq.begin(), seq.end());
    s.train.answer.insert(s.train.answer.end(), ans.begin(), ans.end());
    seen.insert(seq);
  }
  s.train.n = opt.n_train;
  // Keep the test set disjoint from training; give up on a tiny space rather than loop forever.
  int attempts = 0;
  while (s.test.n < opt.n_test) {
    synthetic_sequence(opt, st, seq.data(), ans.data());
    HIPPO_CHECK(++attempts < 1000 * opt.n_test + 100000,
                "synthetic: cannot draw ", opt.n_test, " test sequences unseen in training");
    if (seen.count(seq)) continue;
    s.test.tokens.insert(s.test.tokens.end(), seq.begin(), seq.end());
    s.test.answer.insert(s.test.answer.end(), ans.begin(), ans.end());
    ++s.test.n;
  }
  return s;
}

}  // namespace hippo
