#include "apps/serve/scheduler.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <numeric>

namespace hippo::serve {

namespace {
constexpr size_t kPrefillPerTurn = 512;
}  // namespace

Scheduler::Scheduler(std::shared_ptr<const Model> model, const SchedulerOptions& options,
                     const StateStore* store)
    : model_(std::move(model)), opt_(options), store_(store),
      eot_(model_->tokenizer().eot_id()), text_vocab_(model_->tokenizer().vocab_size()),
      cache_(options.cache_entries, options.cache_bytes) {
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { drain(); }

bool Scheduler::submit(const std::vector<std::shared_ptr<Job>>& jobs) {
  {
    std::lock_guard<std::mutex> lock(m_);
    if (draining_ || queue_.size() + jobs.size() > static_cast<size_t>(opt_.max_queue)) return false;
    for (const auto& j : jobs) queue_.push_back(j);
    stats_.queued = static_cast<int>(queue_.size());
  }
  cv_.notify_all();
  return true;
}

void Scheduler::drain() {
  {
    std::lock_guard<std::mutex> lock(m_);
    draining_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(m_);
  return stats_;
}

// Log-softmax of the raw logits (the model's distribution, before temperature or truncation):
// the chosen token's log-probability and the `top` most likely tokens.
ScoredToken Scheduler::score(std::span<const float> logits, int32_t token, int top) const {
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v - mx));
  const float lse = mx + static_cast<float>(std::log(sum));
  ScoredToken s;
  s.token = token;
  s.logprob = logits[static_cast<size_t>(token)] - lse;
  if (top > 0) {
    std::vector<int32_t> ids(logits.size());
    std::iota(ids.begin(), ids.end(), 0);
    const size_t k = std::min(ids.size(), static_cast<size_t>(top));
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    for (size_t i = 0; i < k; ++i) s.top.emplace_back(ids[i], logits[static_cast<size_t>(ids[i])] - lse);
  }
  return s;
}

void Scheduler::admit(Job& job) {
  Event pe;
  pe.kind = Event::kPrompt;
  pe.index = job.index;
  if (job.score_prompt) {
    // Every prompt token's log-probability needs the logits after each token: token by token.
    job.session.emplace(model_, job.sampling);
    job.session->prefill(std::span<const int32_t>(job.prompt.data(), 1));
    for (size_t i = 1; i < job.prompt.size(); ++i) {
      pe.prompt.push_back(score(job.session->logits(), job.prompt[i], job.logprobs));
      job.session->step(job.prompt[i]);
    }
  } else {
    std::optional<std::pair<Session, size_t>> base;
    if (!job.save_id.empty() && store_ && store_->enabled()) {
      if (auto saved = store_->load(job.save_id, model_)) {
        const auto& t = saved->first;
        if (t.size() <= job.prompt.size() && std::equal(t.begin(), t.end(), job.prompt.begin()))
          base.emplace(std::move(saved->second), t.size());
      }
    }
    // A live state is reused when it covers at least half the prompt: the suffix then continues
    // it in convolution mode (chunked prefill). A short shared prefix saves little, and a fresh
    // prefill of the whole prompt is bit for bit what `hippo generate` computes.
    if (auto live = cache_.longest_prefix(job.prompt, (job.prompt.size() + 1) / 2);
        live && (!base || live->second > base->second))
      base = std::move(live);
    if (base) {
      job.session.emplace(std::move(base->first));
      job.session->set_sampling(job.sampling);
      pe.cached_tokens = static_cast<int64_t>(base->second);
      if (base->second < job.prompt.size())
        job.session->prefill(std::span<const int32_t>(job.prompt).subspan(base->second));
    } else {
      job.session.emplace(model_, job.sampling);
      job.session->prefill(job.prompt);
    }
    cache_.put(job.prompt, *job.session);
  }
  job.channel->push(std::move(pe));
}

void Scheduler::finish(Job& job, const char* reason) {
  // Keep the state for later requests that extend this text: the session has consumed the
  // prompt and the generated tokens it stepped (not the last one sampled). A cancelled job's
  // client is gone; a prompt scored token by token is not kept (a fresh prompt runs in
  // convolution mode, and a cached state must continue exactly as that would).
  std::string error;
  if (job.session && !job.cancelled && !job.score_prompt) {
    std::vector<int32_t> consumed = job.prompt;
    consumed.insert(consumed.end(), job.stepped.begin(), job.stepped.end());
    if (job.session->position() == static_cast<int64_t>(consumed.size())) {
      cache_.put(consumed, *job.session);
      if (!job.save_id.empty() && store_ && store_->enabled()) {
        try {
          store_->save(job.save_id, consumed, *job.session);
        } catch (const std::exception& e) {
          error = std::string("saving session \"") + job.save_id + "\": " + e.what();
        }
      }
    }
  }
  Event e;
  e.kind = error.empty() ? Event::kDone : Event::kError;
  e.index = job.index;
  e.finish_reason = reason;
  e.error = error;
  job.channel->push(std::move(e));
  job.session.reset();
}

void Scheduler::loop() {
  std::vector<Session*> batch;
  std::vector<int32_t> next;
  std::vector<Job*> stepping;
  for (;;) {
    // 1. Admission.
    std::vector<std::shared_ptr<Job>> admitted;
    {
      std::unique_lock<std::mutex> lock(m_);
      cv_.wait(lock, [&] { return !queue_.empty() || !active_.empty() || draining_; });
      if (draining_ && queue_.empty() && active_.empty()) return;
      int64_t used = 0;
      for (const auto& j : active_) used += j->session->state_bytes();
      // While other sequences are decoding, prefill at most kPrefillPerTurn prompt tokens
      // (but always one job) before their next step, so that a burst of new prompts delays
      // them by about one prefill each turn, not by all of them at once.
      size_t prefill_tokens = 0;
      while (!queue_.empty() && static_cast<int>(active_.size() + admitted.size()) < opt_.parallel &&
             used < opt_.max_state_bytes &&
             (active_.empty() || admitted.empty() || prefill_tokens < kPrefillPerTurn)) {
        prefill_tokens += queue_.front()->prompt.size();
        admitted.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      stats_.queued = static_cast<int>(queue_.size());
    }
    for (auto& j : admitted) {
      if (j->cancelled) continue;
      try {
        admit(*j);
        active_.push_back(std::move(j));
      } catch (const std::exception& e) {
        Event ev;
        ev.kind = Event::kError;
        ev.index = j->index;
        ev.error = e.what();
        j->channel->push(std::move(ev));
      }
    }
    // 2. Sample each session's next token; 4. drop the finished and cancelled.
    batch.clear();
    next.clear();
    stepping.clear();
    std::vector<std::shared_ptr<Job>> keep;
    for (auto& j : active_) {
      if (j->cancelled) {
        j->session.reset();
        continue;
      }
      if (j->stop_requested) {
        finish(*j, "stop");
        continue;
      }
      if (j->made >= j->max_tokens) {
        finish(*j, "length");
        continue;
      }
      const int32_t t = j->session->sample();
      ++j->made;
      if (t == eot_ || t >= text_vocab_) {
        finish(*j, "stop");
        continue;
      }
      Event ev;
      ev.kind = Event::kToken;
      ev.index = j->index;
      ev.token = j->logprobs >= 0 ? score(j->session->logits(), t, j->logprobs) : ScoredToken{t, 0, {}};
      j->channel->push(std::move(ev));
      if (j->made >= j->max_tokens) {
        finish(*j, "length");
        continue;
      }
      j->stepped.push_back(t);
      batch.push_back(&*j->session);
      next.push_back(t);
      stepping.push_back(j.get());
      keep.push_back(j);
    }
    active_ = std::move(keep);
    // 3. One batched step over every session still decoding.
    if (!batch.empty()) {
      try {
        step_batch(batch, next);
      } catch (const std::exception& e) {
        for (Job* j : stepping) {
          Event ev;
          ev.kind = Event::kError;
          ev.index = j->index;
          ev.error = e.what();
          j->channel->push(std::move(ev));
          j->session.reset();
        }
        active_.clear();
      }
    }
    {
      std::lock_guard<std::mutex> lock(m_);
      stats_.active = static_cast<int>(active_.size());
      stats_.steps += batch.empty() ? 0 : 1;
      stats_.tokens += static_cast<int64_t>(batch.size());
      stats_.cache_entries = static_cast<int64_t>(cache_.size());
      int64_t used = 0;
      for (const auto& j : active_) used += j->session->state_bytes();
      stats_.state_bytes = used;
    }
  }
}

}  // namespace hippo::serve
