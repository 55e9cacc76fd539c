// The synthetic language tasks of the paper's Table 1 (spec §8).
// Token ids: 0 .. V-3 ordinary symbols, V-2 the trigger "=>", V-1 the no-op ".".
// Each sequence holds `seq_len` tokens, the last being the answer: models read seq[0..L-2]
// and predict seq[1..L-1] (loss on all positions, accuracy on the last one only).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hippo {

enum class SynthTask { InductionHead, AssociativeRecall };
SynthTask parse_synth_task(const std::string& name);
std::string synth_task_name(SynthTask t);

struct SynthOptions {
  SynthTask task = SynthTask::InductionHead;
  int vocab = 0;     // 0: the paper's (20 for induction head, 10 for associative recall)
  int seq_len = 0;   // 0: the paper's (32 and 20)
  int n_train = 5000;
  int n_test = 500;
  uint64_t seed = 0;
  void fill_defaults();
};

struct SynthDataset {
  int vocab = 0, seq_len = 0;
  int n = 0;
  std::vector<int32_t> tokens;  // (n, seq_len)
  const int32_t* seq(int i) const { return tokens.data() + static_cast<size_t>(i) * seq_len; }
};

struct SynthSplits {
  SynthDataset train, test;
};

// Deterministic in opt.seed. Test sequences never repeat a training sequence.
SynthSplits make_synthetic(SynthOptions opt);

// One sequence (for tests and for the generators above).
void induction_head_sequence(int vocab, int seq_len, uint64_t& rng_state, int32_t* out);
void associative_recall_sequence(int vocab, int seq_len, uint64_t& rng_state, int32_t* out);

}  // namespace hippo
