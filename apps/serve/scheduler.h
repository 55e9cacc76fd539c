// Continuous batching. One thread owns every active sequence. Each turn of its loop it
//   1. admits queued jobs while there is room (--parallel sessions, a state-memory budget):
//      a fresh session prefills the prompt (or a cached/saved state prefills only the suffix);
//   2. samples each active session's next token and hands it to the job's channel;
//   3. runs ONE hippo::step_batch over all sessions still decoding, each at its own position;
//   4. drops finished and cancelled jobs.
// Sessions join and leave between steps; each has its own SamplingParams, so a request's
// tokens do not depend on what else is running (step_batch equals stepping each alone).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "apps/serve/job.h"
#include "apps/serve/prefix_cache.h"
#include "apps/serve/state_store.h"
#include "hippo/hippo.hpp"

namespace hippo::serve {

struct SchedulerOptions {
  int parallel = 8;                     // sessions decoding at once
  int64_t max_state_bytes = 4LL << 30;  // admit while the active states hold less than this
  int max_queue = 64;                   // jobs waiting; beyond: 503
  int cache_entries = 16;               // prefix cache (0: off)
  int64_t cache_bytes = 1LL << 30;
};

struct SchedulerStats {
  int active = 0, queued = 0;
  int64_t state_bytes = 0, cache_entries = 0, steps = 0, tokens = 0;
};

class Scheduler {
 public:
  Scheduler(std::shared_ptr<const Model> model, const SchedulerOptions& options,
            const StateStore* store);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues all jobs of one request, or none: false when the queue has no room for them all or
  // the scheduler is draining.
  bool submit(const std::vector<std::shared_ptr<Job>>& jobs);
  // Stops taking jobs, finishes every queued and active one, and joins the thread.
  void drain();
  SchedulerStats stats() const;

 private:
  void loop();
  void admit(Job& job);
  void finish(Job& job, const char* reason);
  ScoredToken score(std::span<const float> logits, int32_t token, int top) const;

  std::shared_ptr<const Model> model_;
  SchedulerOptions opt_;
  const StateStore* store_;
  int32_t eot_;
  int32_t text_vocab_;  // ids the tokenizer can show; a sampled id beyond ends the text

  mutable std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool draining_ = false;
  SchedulerStats stats_;

  // Scheduler thread only.
  std::vector<std::shared_ptr<Job>> active_;
  PrefixCache cache_;
  std::thread thread_;
};

}  // namespace hippo::serve
