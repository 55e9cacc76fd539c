#include "apps/serve/generation.h"

#include <span>

#include "apps/serve/utf8.h"

namespace hippo::serve {

Generation::Generation(CompletionRequest request, std::shared_ptr<const Model> model,
                       Scheduler& scheduler, uint64_t default_seed)
    : req_(std::move(request)), model_(std::move(model)), scheduler_(scheduler),
      channel_(std::make_shared<Channel>()) {
  const uint64_t seed = req_.seed.value_or(default_seed);
  for (size_t p = 0; p < req_.prompts.size(); ++p)
    for (int k = 0; k < req_.n; ++k) {
      auto job = std::make_shared<Job>();
      job->index = static_cast<int>(choices_.size());
      job->prompt = req_.prompts[p];
      // Choice k of a seeded request draws from seed + k: n choices differ, and each is
      // reproduced by the same request.
      job->sampling = {req_.temperature, req_.top_k, req_.top_p, seed + static_cast<uint64_t>(k)};
      job->max_tokens = req_.max_tokens;
      job->logprobs = req_.logprobs;
      job->score_prompt = req_.echo && req_.logprobs >= 0;
      job->save_id = req_.session_id;
      job->channel = channel_;
      choices_.push_back(Choice{job, TextStream(req_.stop), false, false, 0, 0, {}});
    }
}

Generation::~Generation() { cancel(); }

bool Generation::submit() {
  std::vector<std::shared_ptr<Job>> jobs;
  for (auto& c : choices_) jobs.push_back(c.job);
  return scheduler_.submit(jobs);
}

void Generation::cancel() {
  for (auto& c : choices_)
    if (!c.finished) c.job->cancelled = true;
}

Delta& Generation::delta_for(std::vector<Delta>& out, int index) {
  for (auto& d : out)
    if (d.index == index) return d;
  out.push_back(Delta{});
  out.back().index = index;
  return out.back();
}

std::vector<Delta> Generation::poll(std::chrono::milliseconds wait) {
  std::vector<Delta> out;
  const Tokenizer& tok = model_->tokenizer();
  for (auto ev = channel_->pop(wait); ev; ev = channel_->pop(std::chrono::milliseconds(0))) {
    Choice& c = choices_[static_cast<size_t>(ev->index)];
    if (c.finished) continue;  // e.g. a token made after a stop string ended the choice
    Delta& d = delta_for(out, ev->index);
    switch (ev->kind) {
      case Event::kPrompt:
        c.started = true;
        c.cached_tokens = ev->cached_tokens;
        if (req_.echo) {
          d.text += valid_utf8(req_.prompt_texts[static_cast<size_t>(ev->index / req_.n)]);
          if (req_.logprobs >= 0) {
            d.echo_tokens.push_back(ScoredToken{c.job->prompt[0], 0, {}});
            d.echo_tokens.insert(d.echo_tokens.end(), ev->prompt.begin(), ev->prompt.end());
          }
        }
        break;
      case Event::kToken: {
        ++c.completion_tokens;
        if (req_.logprobs >= 0) d.tokens.push_back(ev->token);
        const int32_t t = ev->token.token;
        if (c.text.add(tok.decode(std::span<const int32_t>(&t, 1)))) c.job->stop_requested = true;
        d.text += c.text.take_ready();
        if (c.text.stopped()) {  // finished here: later events of this choice are ignored
          d.text += c.text.take_rest();
          d.finish_reason = "stop";
          c.finished = true;
          ++finished_;
        }
        break;
      }
      case Event::kDone:
        d.text += c.text.take_rest();
        d.finish_reason = ev->finish_reason;
        c.finished = true;
        ++finished_;
        break;
      case Event::kError:
        if (error_.empty()) error_ = ev->error;
        d.finish_reason = "error";
        c.finished = true;
        ++finished_;
        break;
    }
  }
  return out;
}

Usage Generation::usage() const {
  Usage u;
  for (size_t p = 0; p < req_.prompts.size(); ++p) u.prompt_tokens += static_cast<int64_t>(req_.prompts[p].size());
  for (const auto& c : choices_) {
    u.completion_tokens += c.completion_tokens;
    u.cached_tokens += c.cached_tokens;
  }
  if (req_.n > 1) u.cached_tokens /= req_.n;  // counted per prompt, as prompt_tokens
  return u;
}

}  // namespace hippo::serve
