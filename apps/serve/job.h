// One sequence to generate (one choice of one request) and the channel its tokens come back on.
// The request handler fills a Job, hands it to the Scheduler, and reads Events from the Channel;
// the scheduler thread owns the Job's Session from admission to its end.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hippo/hippo.hpp"

namespace hippo::serve {

// A token with its log-probability and, when asked for, the most likely alternatives.
struct ScoredToken {
  int32_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;
};

struct Event {
  enum Kind { kPrompt, kToken, kDone, kError } kind = kToken;
  int index = 0;                     // the choice
  ScoredToken token;                 // kToken
  std::vector<ScoredToken> prompt;   // kPrompt: scores of prompt tokens 1.. (token 0 has none)
  int64_t cached_tokens = 0;         // kPrompt: prompt tokens reused from a cached state
  std::string finish_reason;         // kDone: "stop" (end of text) or "length"
  std::string error;                 // kError
};

// Events of all choices of one request, in order. Many producers (one scheduler), one reader.
class Channel {
 public:
  void push(Event e) {
    {
      std::lock_guard<std::mutex> lock(m_);
      events_.push_back(std::move(e));
    }
    cv_.notify_all();
  }
  // The next event, or nothing when `wait` passes first (so the reader can check its client).
  std::optional<Event> pop(std::chrono::milliseconds wait) {
    std::unique_lock<std::mutex> lock(m_);
    if (!cv_.wait_for(lock, wait, [&] { return !events_.empty(); })) return std::nullopt;
    Event e = std::move(events_.front());
    events_.pop_front();
    return e;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Event> events_;
};

struct Job {
  // Set by the handler before submitting.
  int index = 0;
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int max_tokens = 16;
  int logprobs = -1;          // alternatives per token to report (-1: no log-probabilities)
  bool score_prompt = false;  // report the prompt tokens' log-probabilities (echo + logprobs)
  std::string save_id;        // save the state after the prompt under this id (--state-dir)
  std::shared_ptr<Channel> channel;
  // Set by the handler when its client is gone or a stop string ended the text: the scheduler
  // drops the job before its next step.
  std::atomic<bool> cancelled{false};
  // Set by the handler when a stop string ended the text: finished (and kept) before the next step.
  std::atomic<bool> stop_requested{false};

  // Owned by the scheduler thread.
  std::optional<Session> session;
  int made = 0;                  // tokens sampled
  std::vector<int32_t> stepped;  // generated tokens the session has consumed
};

}  // namespace hippo::serve
