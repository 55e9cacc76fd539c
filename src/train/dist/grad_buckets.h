// The bucketed gradient all-reduce (docs/scaling.md "Bucketed all-reduce"): the parameters are
// cut into buckets of about `bucket_bytes` of gradients, in the order the backward finishes
// them (the last block's first, the embeddings' last). During the step's last micro-batch the
// model's hook (LanguageModel::set_grads_final_hook) hands each block's final gradients into
// the GradBuffer, and each bucket whose gradients are all there is all-reduced with a
// nonblocking MPI_Iallreduce while the backward goes on; between blocks the started ones are
// progressed (Open MPI has no progress thread by default). Buckets start in the same order on
// every rank (a bucket only after the one before it), as MPI requires of collectives.
// The sums are the ones the single all-reduce after the backward computes, element for element,
// so the weights are bit-identical either way.
#pragma once
#include <cstddef>
#include <utility>
#include <vector>

#include "train/dist/communicator.h"
#include "train/dist/grad_sync.h"

namespace hippo {

class BucketedAllreduce {
 public:
  // bucket_bytes >= 1; a bucket holds whole parameters (one larger than bucket_bytes is a
  // bucket of its own).
  BucketedAllreduce(GradBuffer& flat, Communicator& comm, size_t bucket_bytes);

  // Before the backward of the step's last micro-batch on this rank; `first`: it is also the
  // first (the buffer is assigned the gradients, not added to).
  void begin(bool first);
  // The model's hook: the gradients of params()[begin, end) are final. Hands them to the buffer,
  // starts every bucket now complete (in order) and progresses the started ones.
  void grads_final(size_t begin, size_t end);
  // After the backward: hands over what the hook did not (all of it after
  // train_step_recompute, which has no hook) and starts the remaining buckets.
  void start_rest();
  // Waits until every bucket is summed over the ranks (under the watchdog).
  void wait();

  // The buckets as ranges of parameter indices, in the order they are started.
  const std::vector<std::pair<size_t, size_t>>& buckets() const { return buckets_; }

 private:
  void start_ready();

  GradBuffer& flat_;
  Communicator& comm_;
  std::vector<std::pair<size_t, size_t>> buckets_;
  std::vector<char> handed_;  // per parameter: its gradient is in the buffer this step
  size_t next_ = 0;           // the next bucket to start
  bool first_ = true;
};

}  // namespace hippo
