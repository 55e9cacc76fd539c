// A decoding step as one parallel region (issue 18; docs/performance.md "Two threads"): the
// threads of a team (core/team.h) go through the step together. Each takes its share of every
// product's outputs by index, and they meet at a barrier only where the next operation reads
// what others wrote: per H3 or S4D block 4 barriers, per attention block 5, against about six
// fork/joins per block on the per-op path (lm_generate.cpp, the reference this path is tested
// against: step_team_test).
//
// Per block and thread:
//   norm1 of all rows into the thread's own copy (a few microseconds; cheaper than a barrier)
//   the mixer's step_team: the projections' shares, its recurrent part, a barrier, its output
//     projection's share of the d channels
//   r += branch on the same share of channels, barrier
//   norm2 into the own copy, the MLP's fc1 share + GELU, barrier, fc2's share, r += branch,
//   barrier
// then ln_f into the own copy and the thread's share of the vocabulary for the head.
#include <omp.h>

#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/team.h"
#include "kernels/matmul.h"
#include "models/lm.h"

namespace hippo {

namespace {

StepThreading initial_step_threading() {
  const char* env = std::getenv("HIPPO_STEP_THREADING");
  if (!env || !*env) return StepThreading::OneRegion;
  const std::string v = env;
  HIPPO_CHECK(v == "per-op" || v == "one-region", "HIPPO_STEP_THREADING=", v,
              ": expected per-op or one-region");
  return v == "per-op" ? StepThreading::PerOp : StepThreading::OneRegion;
}

std::atomic<int>& step_threading_setting() {
  static std::atomic<int> mode{static_cast<int>(initial_step_threading())};
  return mode;
}

}  // namespace

void set_step_threading(StepThreading mode) {
  step_threading_setting().store(static_cast<int>(mode), std::memory_order_relaxed);
}

StepThreading step_threading() {
  return static_cast<StepThreading>(step_threading_setting().load(std::memory_order_relaxed));
}

void LanguageModel::step_many_team(const int32_t* tokens, std::span<ModelState* const> states,
                                   int64_t rows) const {
  HIPPO_CHECK(rows <= kStepRowsMax, "step_many_team: ", rows, " rows (at most ", kStepRowsMax,
              ")");
  ModelState& first = *states[0];
  const int d = cfg_.d_model;
  const int64_t n = rows * d, V = cfg_.padded_vocab();
  const int T = omp_get_max_threads();
  // Everything the region writes exists before it (no allocation, no check that can fail on
  // the caller's input inside): the embedding (token ids are checked here), each thread's copy
  // of the normed rows and their statistics, the mixers' buffers and caches, the logits.
  float* r = first.resid.get(static_cast<size_t>(n));
  float* branch = first.branch.get(static_cast<size_t>(n));
  float* normed_all = first.normed.get(static_cast<size_t>(n * T));
  float* stats_all = first.stats.get(static_cast<size_t>(2 * rows * T));
  float* hidden = first.hidden.get(static_cast<size_t>(rows * 4 * d));
  float* logits = first.logits.get(static_cast<size_t>(rows * V));
  {
    int64_t off = 0;
    for (const ModelState* st : states) {  // each state's positions are its own
      embed(tokens + off, st->batch, 1, st->position, r + off * d);
      off += st->batch;
    }
  }
  const size_t S = states.size(), nl = blocks_.size();
  std::vector<MixerState*> layer(nl * S);  // layer i's states at [i * S, (i + 1) * S)
  for (size_t i = 0; i < nl; ++i) {
    for (size_t k = 0; k < S; ++k) layer[i * S + k] = states[k]->layers[i].get();
    blocks_[i]->mixer->prepare_team_step(std::span<MixerState* const>(&layer[i * S], S));
  }
  const WeightView E = wte_.view();
  run_team(T, [&](const Team& team) {
    float* normed = normed_all + team.t * n;
    float* stats = stats_all + team.t * 2 * rows;
    const auto [c0, c1] = team.share(d);
    auto add_branch = [&] {  // r += branch on this thread's channels
      for (int64_t row = 0; row < rows; ++row)
        for (int64_t c = c0; c < c1; ++c) r[row * d + c] += branch[row * d + c];
    };
    for (size_t i = 0; i < nl; ++i) {
      const Block& b = *blocks_[i];
      b.norm1.forward_inference(r, normed, rows, stats);
      b.mixer->step_team(normed, branch, std::span<MixerState* const>(&layer[i * S], S), team);
      add_branch();
      team.barrier();
      b.norm2.forward_inference(r, normed, rows, stats);
      b.mlp.forward_team(normed, branch, rows, hidden, team);
      add_branch();
      team.barrier();
    }
    ln_f_.forward_inference(r, normed, rows, stats);
    const auto [v0, v1] = team.share(V);
    matmul_xwt_part(normed, rows, E, logits, v0, v1);
  });
  for (ModelState* st : states) ++st->position;
  int64_t off = first.batch;
  for (size_t k = 1; k < S; ++k) {
    ModelState& st = *states[k];
    float* dst = st.logits.get(static_cast<size_t>(st.batch * V));
    std::memcpy(dst, logits + off * V, sizeof(float) * static_cast<size_t>(st.batch * V));
    off += st.batch;
  }
}

}  // namespace hippo
