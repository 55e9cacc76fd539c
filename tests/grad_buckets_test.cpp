// The bucketed gradient all-reduce's hand-off (docs/scaling.md "Bucketed all-reduce"):
// LanguageModel::backward reports each parameter's gradient exactly once, when it is final,
// and BucketedAllreduce starts buckets that tile the gradient buffer in order and leave it
// holding what GradBuffer's whole-buffer sums give. The MPI end (bit-identical weights with
// and without buckets, and to one process) is tests/ref/test_mpi_train.py.
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "models/lm.h"
#include "train/dist/grad_buckets.h"
#include "train/dist/grad_sync.h"

using namespace hippo;

namespace {

ModelConfig hybrid_config(bool learned_pos) {
  return ModelConfig::from_json({{"vocab_size", 29}, {"d_model", 16}, {"n_layer", 3}, {"d_state", 8},
                                 {"attn_heads", 2}, {"learned_pos", learned_pos},
                                 {"max_position", 64}, {"dropout", 0.1},
                                 {"layers", {"h3", "attention", "h3"}}},
                                "test");
}

// One forward + loss of random tokens, ready for backward.
void forward_loss(LanguageModel& m, uint64_t seed) {
  const int B = 2, L = 7;
  Rng rng(seed);
  std::vector<int32_t> tok(B * L), tgt(B * L);
  for (int i = 0; i < B * L; ++i) {
    tok[i] = static_cast<int32_t>(rng.next_u64() % 29);
    tgt[i] = static_cast<int32_t>(rng.next_u64() % 29);
  }
  m.set_training(true, seed);
  m.forward(tok.data(), B, L);
  m.loss(tgt.data());
}

std::vector<float> grad_of(const ParamRef& p) {
  return std::vector<float>(p.param->grad.data(), p.param->grad.data() + p.param->grad.numel());
}

// Records the started all-reduces instead of running them (rank 0 of 1).
struct RecordingComm final : Communicator {
  std::vector<std::pair<const float*, size_t>> started;
  int progressed = 0, waited = 0;
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_size() const override { return 1; }
  void allreduce_sum(float*, size_t) override {}
  void allreduce_sum(double*, size_t) override {}
  void start_allreduce_sum(float* data, size_t n) override { started.push_back({data, n}); }
  void progress() override { ++progressed; }
  void wait_all() override { ++waited; }
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  void abort_all(const std::string&) override {}
  void set_timeout(double) override {}
  void set_context(const std::string&) override {}
};

}  // namespace

TEST(GradsFinalHook, ReportsEveryParameterOnceWhenItsGradientIsFinal) {
  for (bool learned_pos : {false, true}) {
    LanguageModel m(hybrid_config(learned_pos));
    m.init(3);
    m.zero_grad();
    forward_loss(m, 5);
    const ParamList& ps = m.params();
    std::vector<int> reported(ps.size(), 0);
    std::vector<std::vector<float>> at_report(ps.size());
    std::vector<std::pair<size_t, size_t>> calls;
    m.set_grads_final_hook([&](size_t b, size_t e) {
      calls.push_back({b, e});
      for (size_t i = b; i < e; ++i) {
        ++reported[i];
        at_report[i] = grad_of(ps[i]);
      }
    });
    m.backward(0.5f);
    m.set_grads_final_hook(nullptr);
    for (size_t i = 0; i < ps.size(); ++i) {
      ASSERT_EQ(reported[i], 1) << ps[i].name;
      // Nothing was added after the report (a hook called too early fails here).
      ASSERT_EQ(at_report[i], grad_of(ps[i])) << ps[i].name;
    }
    // ln_f, the blocks from the last to the first, the embeddings: one call each, in order.
    ASSERT_EQ(calls.size(), 3u + 2u);
    EXPECT_EQ(calls.front().second, ps.size());
    EXPECT_EQ(ps[calls.front().first].name.rfind("backbone.ln_f.", 0), 0u);
    EXPECT_EQ(calls.back().first, 0u);
    for (size_t c = 1; c < calls.size(); ++c) EXPECT_EQ(calls[c].second, calls[c - 1].first);
    EXPECT_EQ(ps[calls[1].first].name.rfind("backbone.layers.2.", 0), 0u);
  }
}

TEST(BucketedAllreduce, BucketsTileTheBufferInOrderAndSumLikeGradBuffer) {
  LanguageModel m(hybrid_config(true));
  m.init(4);
  const ParamList& ps = m.params();
  for (size_t bucket_bytes : {size_t{1}, size_t{700}, size_t{5000}, size_t{1} << 30}) {
    GradBuffer ref(ps), flat(ps);
    RecordingComm comm;
    BucketedAllreduce buckets(flat, comm, bucket_bytes);
    // Two micro-batches: the first summed into both buffers whole, the second handed over by
    // the hook during its backward.
    m.zero_grad();
    forward_loss(m, 11);
    m.backward(0.5f);
    ref.assign_grads();
    flat.assign_grads();
    m.zero_grad();
    forward_loss(m, 12);
    buckets.begin(false);
    m.set_grads_final_hook([&](size_t b, size_t e) { buckets.grads_final(b, e); });
    m.backward(0.5f);
    m.set_grads_final_hook(nullptr);
    // Everything is final when backward returns, so every bucket has started already.
    EXPECT_EQ(comm.started.size(), buckets.buckets().size()) << bucket_bytes;
    buckets.start_rest();
    buckets.wait();
    ref.add_grads();
    EXPECT_EQ(comm.waited, 1);
    EXPECT_GE(comm.progressed, 5);
    // Started from the end of the buffer to its start, contiguous, covering it once.
    ASSERT_EQ(comm.started.size(), buckets.buckets().size());
    const float* end = flat.data() + flat.size();
    for (size_t k = 0; k < comm.started.size(); ++k) {
      EXPECT_EQ(comm.started[k].first + comm.started[k].second, end) << k;
      end = comm.started[k].first;
      if (k + 1 < comm.started.size()) {
        EXPECT_GE(comm.started[k].second * sizeof(float), bucket_bytes);
      }
    }
    EXPECT_EQ(end, flat.data());
    if (bucket_bytes == 1) {
      EXPECT_EQ(comm.started.size(), ps.size());
    }
    if (bucket_bytes == size_t{1} << 30) {
      EXPECT_EQ(comm.started.size(), 1u);
    }
    for (size_t i = 0; i < flat.size(); ++i) ASSERT_EQ(flat.data()[i], ref.data()[i]) << i;
  }
}

TEST(BucketedAllreduce, WithoutTheHookStartRestHandsOverEverything) {
  // train_step_recompute reports nothing: start_rest must hand over and start all of it.
  LanguageModel m(hybrid_config(false));
  m.init(6);
  GradBuffer ref(m.params()), flat(m.params());
  RecordingComm comm;
  BucketedAllreduce buckets(flat, comm, 1000);
  m.zero_grad();
  forward_loss(m, 2);
  m.backward(1.0f);
  buckets.begin(true);
  EXPECT_TRUE(comm.started.empty());
  buckets.start_rest();
  buckets.wait();
  ref.assign_grads();
  EXPECT_EQ(comm.started.size(), buckets.buckets().size());
  for (size_t i = 0; i < flat.size(); ++i) ASSERT_EQ(flat.data()[i], ref.data()[i]) << i;
  // A parameter reported twice in one backward is a bug in the hook's caller.
  buckets.begin(true);
  buckets.grads_final(0, 1);
  EXPECT_THROW(buckets.grads_final(0, 1), Error);
}
