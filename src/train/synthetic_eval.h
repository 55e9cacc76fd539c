// Evaluation for the synthetic tasks: loss over all positions, accuracy on the last one.
#pragma once
#include "data/synthetic.h"
#include "models/lm.h"
#include "train/trainer.h"

namespace hippo {

// metrics: "loss" (all positions), "acc" (last position only).
EvalResult evaluate_synthetic(LanguageModel& model, const SynthDataset& test, int batch_size = 250);

}  // namespace hippo
