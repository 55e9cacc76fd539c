// One request in flight: its choices as jobs on the scheduler, and the text each has produced
// so far (stop strings applied, see text_stream.h). The HTTP handler polls it, streaming the
// deltas or collecting them into one reply. Destroying it cancels what is still running, so a
// client that goes away frees its slots.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/serve/job.h"
#include "apps/serve/request.h"
#include "apps/serve/responses.h"
#include "apps/serve/scheduler.h"
#include "apps/serve/text_stream.h"

namespace hippo::serve {

// What one choice gained since the last poll.
struct Delta {
  int index = 0;
  std::string text;                      // new text (with echo: the prompt first)
  std::vector<ScoredToken> tokens;       // new generated tokens (when log-probabilities asked)
  std::vector<ScoredToken> echo_tokens;  // the prompt's tokens, once (echo with logprobs)
  std::string finish_reason;             // set on the choice's last delta
};

class Generation {
 public:
  Generation(CompletionRequest request, std::shared_ptr<const Model> model, Scheduler& scheduler,
             uint64_t default_seed);
  ~Generation();
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  // Queues every choice; false when the scheduler has no room (the caller answers 503).
  bool submit();
  // Waits up to `wait` for progress; returns each choice's new text and tokens.
  std::vector<Delta> poll(std::chrono::milliseconds wait);
  bool done() const { return finished_ == static_cast<int>(choices_.size()); }
  // The first error a choice met (empty: none).
  const std::string& error() const { return error_; }
  void cancel();

  const CompletionRequest& request() const { return req_; }
  Usage usage() const;
  int choices() const { return static_cast<int>(choices_.size()); }

 private:
  struct Choice {
    std::shared_ptr<Job> job;
    TextStream text;
    bool started = false, finished = false;
    int64_t completion_tokens = 0, cached_tokens = 0;
    std::vector<ScoredToken> prompt_scores;
  };
  Delta& delta_for(std::vector<Delta>& out, int index);

  CompletionRequest req_;
  std::shared_ptr<const Model> model_;
  Scheduler& scheduler_;
  std::shared_ptr<Channel> channel_;
  std::vector<Choice> choices_;
  int finished_ = 0;
  std::string error_;
};

}  // namespace hippo::serve
