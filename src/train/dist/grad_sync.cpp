#include "train/dist/grad_sync.h"

#include <cstring>

#include "core/error.h"
#include "data/hash.h"

namespace hippo {

GradBuffer::GradBuffer(const ParamList& params) : params_(params) {
  size_t n = 0;
  for (const ParamRef& p : params_) {
    offsets_.push_back(n);
    n += static_cast<size_t>(p.param->grad.numel());
  }
  offsets_.push_back(n);
  flat_.resize(n);
}

void GradBuffer::assign_grads() { assign_grads(0, params_.size()); }
void GradBuffer::add_grads() { add_grads(0, params_.size()); }

void GradBuffer::assign_grads(size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i)
    std::memcpy(flat_.data() + offsets_[i], params_[i].param->grad.data(),
                (offsets_[i + 1] - offsets_[i]) * sizeof(float));
}

void GradBuffer::add_grads(size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    float* out = flat_.data() + offsets_[i];
    const float* g = params_[i].param->grad.data();
    const size_t n = offsets_[i + 1] - offsets_[i];
    for (size_t j = 0; j < n; ++j) out[j] += g[j];
  }
}

void GradBuffer::store_grads() {
  const float* in = flat_.data();
  for (const ParamRef& p : params_) {
    const size_t n = static_cast<size_t>(p.param->grad.numel());
    std::memcpy(p.param->grad.data(), in, n * sizeof(float));
    in += n;
  }
}

void broadcast_train_state(Communicator& comm, const ParamList& params, AdamW& adam) {
  if (comm.size() == 1) return;
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor& w = params[i].param->value;
    HIPPO_CHECK(w.data(), "data-parallel training: parameter '", params[i].name, "' has no fp32 value");
    comm.broadcast(w.data(), static_cast<size_t>(w.numel()) * sizeof(float), 0);
    Tensor& m = adam.first_moments()[i];
    Tensor& v = adam.second_moments()[i];
    comm.broadcast(m.data(), static_cast<size_t>(m.numel()) * sizeof(float), 0);
    comm.broadcast(v.data(), static_cast<size_t>(v.numel()) * sizeof(float), 0);
  }
  int64_t t = adam.steps();
  comm.broadcast(&t, sizeof t, 0);
  adam.set_steps(t);
}

void check_same_weights(Communicator& comm, const ParamList& params) {
  if (comm.size() == 1) return;
  uint64_t h = kFnvOffset;
  for (const ParamRef& p : params)
    h = fnv1a64(p.param->value.data(), static_cast<size_t>(p.param->value.numel()) * sizeof(float), h);
  uint64_t root = h;
  comm.broadcast(&root, sizeof root, 0);
  // The count of ranks whose weights differ from rank 0's (each adds 0 or 1).
  double differ = root != h ? 1 : 0;
  comm.allreduce_sum(&differ, 1);
  HIPPO_CHECK(differ == 0, "data-parallel training: the weights of ", differ, " rank(s) differ from "
              "rank 0's", root != h ? str(" (this is rank ", comm.rank(), ")") : std::string());
}

}  // namespace hippo
