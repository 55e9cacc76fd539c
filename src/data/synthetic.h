// The synthetic recall tasks: the paper's Table 1 (spec §8) and multi-query associative recall
// (Zoology, Arora et al. 2023).
// Token ids: 0 .. V-3 ordinary symbols, V-2 the trigger "=>", V-1 the no-op ".".
// Each sequence holds `seq_len` tokens; models read seq[0..L-2] and predict seq[1..L-1].
// `answer` marks the tokens that are scored by accuracy: the last one for induction head and
// associative recall (whose loss covers all positions, as in the authors' code), the value
// after every query for mqar (whose loss covers only those positions, as in Zoology's).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hippo {

enum class SynthTask { InductionHead, AssociativeRecall, MultiQueryRecall };
SynthTask parse_synth_task(const std::string& name);
std::string synth_task_name(SynthTask t);
// "induction_head, associative_recall, mqar" (for messages and --help).
std::string synth_task_names();

struct SynthOptions {
  SynthTask task = SynthTask::InductionHead;
  // 0: the task's default. vocab: 20 (induction head), 10 (associative recall), 64 (mqar).
  // seq_len: 32, 20 (or 2·pairs + 3 when pairs is given), max(64, 4·pairs).
  int vocab = 0;
  int seq_len = 0;
  // Key-value pairs per sequence. Associative recall: 0 = as many as fit, (seq_len - 3) / 2,
  // keys drawn with repetition; mqar: 0 = 8, distinct keys, each queried once. Induction head
  // has none (must be 0).
  int pairs = 0;
  int n_train = 5000;
  int n_test = 500;
  uint64_t seed = 0;
  // Sets the defaults and refuses impossible combinations with a message naming the option
  // (--vocab, --seq-len, --pairs).
  void fill_defaults();
};

struct SynthDataset {
  int vocab = 0, seq_len = 0;
  int n = 0;
  std::vector<int32_t> tokens;  // (n, seq_len)
  std::vector<uint8_t> answer;  // (n, seq_len): 1 where the token is an answer
  bool loss_on_answers_only = false;
  const int32_t* seq(int i) const { return tokens.data() + static_cast<size_t>(i) * seq_len; }
  const uint8_t* answers(int i) const { return answer.data() + static_cast<size_t>(i) * seq_len; }
};

struct SynthSplits {
  SynthDataset train, test;
};

// Deterministic in opt.seed. Test sequences never repeat a training sequence.
SynthSplits make_synthetic(SynthOptions opt);

// One sequence of opt's task (opt after fill_defaults); answer may be null.
void synthetic_sequence(const SynthOptions& opt, uint64_t& rng_state, int32_t* out, uint8_t* answer);
// The paper's two tasks at the given sizes (for tests).
void induction_head_sequence(int vocab, int seq_len, uint64_t& rng_state, int32_t* out);
void associative_recall_sequence(int vocab, int seq_len, uint64_t& rng_state, int32_t* out);

}  // namespace hippo
