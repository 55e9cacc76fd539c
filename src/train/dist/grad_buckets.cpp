#include "train/dist/grad_buckets.h"

#include <algorithm>

#include "core/error.h"

namespace hippo {

BucketedAllreduce::BucketedAllreduce(GradBuffer& flat, Communicator& comm, size_t bucket_bytes)
    : flat_(flat), comm_(comm), handed_(flat.num_params(), 0) {
  HIPPO_CHECK(bucket_bytes >= 1, "the all-reduce bucket size must be at least one byte");
  // From the last parameter down: the backward finishes them roughly in that order.
  size_t end = flat.num_params();
  for (size_t i = end; i-- > 0;) {
    if ((flat.offset(end) - flat.offset(i)) * sizeof(float) >= bucket_bytes || i == 0) {
      buckets_.push_back({i, end});
      end = i;
    }
  }
}

void BucketedAllreduce::begin(bool first) {
  HIPPO_CHECK(next_ == 0 || next_ == buckets_.size(), "BucketedAllreduce::begin: the last step's "
              "buckets were not all started");
  std::fill(handed_.begin(), handed_.end(), 0);
  next_ = 0;
  first_ = first;
}

void BucketedAllreduce::grads_final(size_t begin, size_t end) {
  HIPPO_CHECK(begin <= end && end <= handed_.size(), "BucketedAllreduce: parameters [", begin, ", ",
              end, ") out of range (", handed_.size(), ")");
  for (size_t i = begin; i < end; ++i)
    HIPPO_CHECK(!handed_[i], "BucketedAllreduce: the gradient of parameter ", i,
                " was reported final twice in one backward");
  if (first_) flat_.assign_grads(begin, end);
  else flat_.add_grads(begin, end);
  std::fill(handed_.begin() + static_cast<std::ptrdiff_t>(begin),
            handed_.begin() + static_cast<std::ptrdiff_t>(end), 1);
  start_ready();
  comm_.progress();
}

void BucketedAllreduce::start_ready() {
  for (; next_ < buckets_.size(); ++next_) {
    const auto [b, e] = buckets_[next_];
    for (size_t i = b; i < e; ++i)
      if (!handed_[i]) return;
    comm_.start_allreduce_sum(flat_.data() + flat_.offset(b), flat_.offset(e) - flat_.offset(b));
  }
}

void BucketedAllreduce::start_rest() {
  for (size_t i = 0; i < handed_.size(); ++i) {
    if (handed_[i]) continue;
    if (first_) flat_.assign_grads(i, i + 1);
    else flat_.add_grads(i, i + 1);
    handed_[i] = 1;
  }
  start_ready();
}

void BucketedAllreduce::wait() {
  HIPPO_CHECK(next_ == buckets_.size(), "BucketedAllreduce::wait: ", buckets_.size() - next_,
              " bucket(s) not started");
  comm_.wait_all();
}

}  // namespace hippo
