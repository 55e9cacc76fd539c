// The interfaces every sequence mixer implements (parameters and Module: core/param.h).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/param.h"
#include "core/rng.h"
#include "core/team.h"

namespace hippo {

// Per-sequence recurrent state of a mixer (SSM states, or an attention KV cache).
struct MixerState {
  virtual ~MixerState() = default;
  // Frees what the chunks of one long prefill share (the diagonal SSM's kernel for the chunk
  // length and the dynamics it was made from). Mixer::prefill keeps it between calls on the
  // assumption that the parameters do not change; LanguageModel::prefill releases it before
  // and after every call.
  virtual void release_prefill_cache() {}
  // Bytes one decoding step moves through this state besides the weights: an SSM state is
  // read and written back whole, a KV cache read up to its current length. For the memory
  // bound of decoding (hippo bench generate).
  virtual int64_t step_bytes() const { return 0; }
};

// Scratch of the const inference passes (prefill), owned by the caller (a sequence's
// ModelState), so that layers write nothing of their own while generating. Numbered
// grow-only buffers: the layers of a model run one after the other on the same workspace, so a
// long prompt costs one layer's activations at a time. Slots held by pointer: references to
// a slot stay valid while later slots are added, and moving a workspace cannot throw (so a
// vector of states moves rather than copies them).
class Workspace {
 public:
  Buffer& slot(size_t i) {
    while (bufs_.size() <= i) bufs_.push_back(std::make_unique<Buffer>());
    return *bufs_[i];
  }
  void release() { bufs_.clear(); }

 private:
  std::vector<std::unique_ptr<Buffer>> bufs_;
};

// A sequence mixer: H3, attention, S4D, or an ablation. Inputs and outputs are (B, L, d)
// row-major, d = model width.
class Mixer : public Module {
 public:
  // Convolution (whole-sequence) mode. Keeps what backward needs until the next forward.
  virtual void forward(const float* x, float* y, int B, int L) = 0;
  // dy for the last forward; writes dx, adds parameter gradients into Param::grad.
  virtual void backward(const float* dy, float* dx) = 0;
  // Training-time initialisation (spec §1, §2, §4): linears N(0, std), output projections
  // N(0, std / sqrt(2 n_layer)).
  virtual void init(Rng& rng, int n_layer, float std = 0.02f) = 0;

  // Recurrent mode. A fresh state is the state before position 0.
  // new_state, prefill, step and step_many are const and write nothing but the states and the
  // workspace they are given: threads may run separate states of one layer at once, and
  // none of them touches what forward() keeps for backward().
  virtual std::unique_ptr<MixerState> new_state(int B) const = 0;
  // Runs x (B, L, d) in convolution mode continuing from `state` (a fresh state: the prompt
  // from position 0), writes y (the numbers of the whole-sequence forward over everything the
  // state has seen and x), leaves the state after it. SSM layers carry their state across
  // calls (state passing, spec §7); attention appends to its KV cache. So a long sequence can
  // run in chunks, one call per chunk, in memory set by the chunk. Scratch comes from `ws`;
  // what all chunks share may be kept in the state until release_prefill_cache().
  virtual void prefill(const float* x, float* y, int B, int L, MixerState& state,
                       Workspace& ws) const = 0;
  // The same with a workspace of its own (and no cache kept).
  void prefill(const float* x, float* y, int B, int L, MixerState& state) const {
    Workspace ws;
    prefill(x, y, B, L, state, ws);
    state.release_prefill_cache();
  }
  // One token per sequence of several states, each at its own position: x, y are the rows of
  // all states stacked in order (state k's batch rows after those of states 0..k-1), d wide.
  // The dense products run once over all rows, the recurrent parts per state; each state's rows
  // equal what stepping it alone gives. The stacked rows' scratch is the first state's; the
  // states must be distinct.
  virtual void step_many(const float* x, float* y, std::span<MixerState* const> states) const = 0;
  // step_many by a team of threads inside one parallel region (a whole decoding step of the
  // model, core/team.h), at most kStepRowsMax rows in all. First prepare_team_step on the
  // calling thread, before the region: it makes every buffer and cache the step writes (no
  // allocation happens inside the region). Then every thread of the team calls step_team with
  // the same arguments: x must be complete and is not written; the step passes at least one
  // team barrier after its last read of anything the caller wrote before it; on return this
  // thread has written columns team.share(d) of every row of y (the caller's barrier waits for
  // the rest). The result equals step_many's (bit for bit for the small-rows kernels, see
  // kernels/matmul.h). The default runs step_many on the first thread.
  virtual void prepare_team_step(std::span<MixerState* const> states) const { (void)states; }
  virtual void step_team(const float* x, float* y, std::span<MixerState* const> states,
                         const Team& team) const {
    if (team.t == 0) step_many(x, y, states);
    team.barrier();
  }
  // One token per sequence of one state: x, y are (B, d). step_many of that one state.
  void step(const float* x, float* y, MixerState& state) const {
    MixerState* one = &state;
    step_many(x, y, std::span<MixerState* const>(&one, 1));
  }
};

}  // namespace hippo
