// The training loop: AdamW with parameter groups, warmup + cosine schedule, gradient
// accumulation and clipping, periodic evaluation, atomic checkpoints and exact resume.
// Determinism: the batch and the dropout masks of a step are functions of (seed, step), so
// the same config, seed and thread count give the same run bit for bit, resumed or not.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/batch.h"
#include "models/lm.h"
#include "train/adamw.h"
#include "train/dist/communicator.h"
#include "train/run_folder.h"
#include "train/schedule.h"

namespace hippo {

// Fills the batch for (step, micro-batch); must depend only on its arguments.
using BatchFn = std::function<void(int64_t step, int micro, Batch& out)>;

struct EvalResult {
  std::map<std::string, double> metrics;  // e.g. "loss", "acc", "ppl"
};
using EvalFn = std::function<EvalResult(LanguageModel&)>;

struct TrainOptions {
  int64_t steps = 1000;
  int grad_accum = 1;
  // Under several ranks: gradients all-reduced in buckets of about this many bytes, started
  // during the backward of the step's last micro-batch (train/dist/grad_buckets.h); 0: one
  // all-reduce after the backward. The weights are the same bit for bit either way.
  size_t allreduce_bucket_bytes = 0;
  AdamWOptions adam;
  int64_t warmup_steps = 0;
  float min_lr_ratio = 0.1f;
  float clip = 1.0f;            // global gradient-norm clip; 0 disables
  uint64_t seed = 0;
  int64_t eval_every = 0;       // 0: only at the end
  int64_t save_every = 0;       // 0: only at the end (when out_dir is set)
  int64_t log_every = 10;
  std::string out_dir;          // checkpoint.safetensors, model.safetensors, log.jsonl
  bool resume = false;          // continue from out_dir/checkpoint.safetensors
  bool force = false;           // discard a run already in out_dir (else refused)
  bool quiet = false;           // no progress line
  // The long-sequence step (LanguageModel::train_step_recompute) for every micro-batch (On),
  // none (Off), or as the model picks by memory (Auto; HIPPO_TRAIN_RECOMPUTE when set). Set on
  // the model for the run (evaluation's choice of the chunked path follows it too) and restored
  // after. Each log record says whether its steps took it ("recompute").
  RecomputeMode recompute = RecomputeMode::Auto;
  // Stop early once this eval metric reaches the threshold (e.g. "acc" >= 1.0).
  std::string stop_metric;
  double stop_threshold = 0;
  // Extra __metadata__ for the checkpoint and weights files (e.g. the tokenizer).
  std::map<std::string, std::string> metadata;
  // What defines the run besides the model config and the settings above (e.g. "data",
  // "tokenizer", "batch-size", "seq-len"). Stored in the checkpoint with the trainer's own
  // (seed, grad-accum, lr, wd, warmup, min-lr-ratio, clip, AdamW betas and eps); a resume with
  // any of them different is refused (train/checkpoint.h, check_resume_compatible). Free to
  // change on resume: steps, eval/save/log frequency, quiet, and the caller's unlisted ones.
  std::map<std::string, std::string> run_settings;
  // Called after every optimizer step with the step count done, its loss and the tokens/s so
  // far; returning false stops the run there, saved as at the end (the public API's progress
  // callback, include/hippo/train.hpp).
  std::function<bool(int64_t step, double loss, double tokens_per_s)> on_step;
};

// Throws hippo::Error naming the option ("--log-every must be >= 1, got 0") for a value out of
// its range; train() calls it first.
void validate_train_options(const TrainOptions& opt);

// The settings a resumed run must share with its checkpoint (opt.run_settings and the
// trainer's own), as stored in the checkpoint metadata.
std::map<std::string, std::string> run_settings(const TrainOptions& opt);

struct TrainResult {
  int64_t steps_done = 0;
  bool stopped_early = false;
  double tokens_per_s = 0;
  double last_loss = 0;
  int64_t recompute_micro_batches = 0;  // of this run's, those that took train_step_recompute
  EvalResult last_eval;
  std::vector<std::pair<int64_t, EvalResult>> eval_history;
};

// Throws hippo::Error on NaN/Inf in the loss or a gradient, naming the step and tensor;
// the last checkpoint on disk is left as it was.
// With out_dir set, the run folder (train/run_folder.h) is made ready and its free space
// checked before step 1. `folder` is one the caller prepared earlier (so that a refused
// folder costs no data loading); otherwise train() prepares it. A checkpoint save that fails
// (full disk, I/O error) is reported and tried again at the next save point while training
// goes on; the previous checkpoint stays intact. If the final save fails, train() throws once
// the run is over, naming the step of the checkpoint still on disk.
//
// Data parallel (comm with size() > 1, docs/scaling.md): grad_accum is the number of
// micro-batches of a step over all ranks, a multiple of the rank count; rank r computes
// micro-batches [r * k, (r + 1) * k) of each step (k = grad_accum / size), the gradients are
// summed over ranks, and every rank takes the same optimizer step from rank 0's starting
// weights and optimizer state (broadcast). Only rank 0 has the run folder, logs, evaluates,
// saves and calls on_step; its stop decisions reach the others. Each micro-batch's gradient is
// computed into zeroed grads and summed in a flat buffer, so N ranks of k micro-batches give
// the same sum as one process of N * k, bit for bit when N * k = 2.
TrainResult train(LanguageModel& model, const TrainOptions& opt, const BatchFn& next_batch,
                  const EvalFn& evaluate, RunFolder* folder = nullptr, Communicator* comm = nullptr);

}  // namespace hippo
