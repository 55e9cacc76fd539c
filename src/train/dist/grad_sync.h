// What data-parallel training (and gradient accumulation) keeps in step across micro-batches
// and ranks: the gradients summed in one flat buffer, and the weights and optimizer state
// every rank starts from.
#pragma once
#include <cstdint>
#include <vector>

#include "nn/module.h"
#include "train/adamw.h"
#include "train/dist/communicator.h"

namespace hippo {

// The gradients of all parameters, in params() order, as one flat array: micro-batch
// gradients are each computed into zeroed Param::grad and then added here, so that the sum
// is g0 + g1 + ... whether one process computes them all (--grad-accum) or each rank one
// (all-reduce). One all-reduce over it is one collective per step.
class GradBuffer {
 public:
  explicit GradBuffer(const ParamList& params);
  void assign_grads();  // flat = grads
  void add_grads();     // flat += grads
  void store_grads();   // grads = flat
  // The same for params()[begin, end) only (the bucketed all-reduce hands them over as the
  // backward finishes them).
  void assign_grads(size_t begin, size_t end);
  void add_grads(size_t begin, size_t end);
  float* data() { return flat_.data(); }
  size_t size() const { return flat_.size(); }
  size_t num_params() const { return params_.size(); }
  // Where parameter i's gradient starts in data(); offset(num_params()) == size().
  size_t offset(size_t i) const { return offsets_[i]; }

 private:
  ParamList params_;
  std::vector<size_t> offsets_;
  std::vector<float> flat_;
};

// Rank 0's weights, AdamW moments and step count to every rank.
void broadcast_train_state(Communicator& comm, const ParamList& params, AdamW& adam);

// Fails, naming the first rank that differs, unless every rank holds rank 0's weights bit for
// bit (a cheap hash; what data parallelism promises after every step).
void check_same_weights(Communicator& comm, const ParamList& params);

}  // namespace hippo
