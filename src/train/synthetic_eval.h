// Evaluation for the synthetic tasks: loss over the positions the task trains on, accuracy over
// its answers (the last token of induction head and associative recall; every queried value of
// mqar).
#pragma once
#include "data/synthetic.h"
#include "models/lm.h"
#include "train/trainer.h"

namespace hippo {

// metrics: "loss", "acc" (fraction of answers predicted exactly, argmax).
EvalResult evaluate_synthetic(LanguageModel& model, const SynthDataset& test, int batch_size = 250);

}  // namespace hippo
