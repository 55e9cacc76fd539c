// hippo::Session: one sequence's state over a shared Model (prefill, step, sampling, fork,
// save/restore), and step_batch over many sessions.
#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "api/impl.h"
#include "core/error.h"
#include "core/threads.h"
#include "generate/state_io.h"

namespace hippo {

namespace detail {

SessionImpl::SessionImpl(std::shared_ptr<const Model> m, const SamplingParams& s)
    : model(std::move(m)),
      sampling(s),
      sampler({s.temperature, s.top_k, s.top_p}, s.seed) {
  state = lm().new_state(1);
}

}  // namespace detail

namespace {

std::shared_ptr<const Model> require_model(std::shared_ptr<const Model> m) {
  HIPPO_CHECK(m != nullptr, "Session: the model is null (load one with hippo::Model::load)");
  return m;
}

void check_token(const detail::SessionImpl& s, int32_t t, const char* what) {
  HIPPO_CHECK(t >= 0 && t < s.vocab(), what, ": token id ", t, " is outside the vocabulary [0, ",
              s.vocab(), ") of ", s.model->path());
}

void keep_logits(detail::SessionImpl& s, const float* lg) {
  const size_t V = static_cast<size_t>(s.lm().config().padded_vocab());
  s.logits.assign(lg, lg + V);
}

}  // namespace

Session::Session(std::shared_ptr<const Model> model, const SamplingParams& sampling)
    : impl_(std::make_unique<detail::SessionImpl>(require_model(std::move(model)), sampling)) {}
Session::Session(std::unique_ptr<detail::SessionImpl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

const Model& Session::model() const { return *impl_->model; }
int64_t Session::position() const { return impl_->state.position; }

std::span<const float> Session::prefill(std::span<const int32_t> tokens) {
  apply_num_threads();
  detail::SessionImpl& s = *impl_;
  HIPPO_CHECK(!tokens.empty(), "Session::prefill: no tokens (give at least one)");
  for (int32_t t : tokens) check_token(s, t, "Session::prefill");
  HIPPO_CHECK(tokens.size() <= static_cast<size_t>(INT32_MAX), "Session::prefill: ",
              tokens.size(), " tokens in one call; at most ", INT32_MAX);
  // From any position: in convolution mode, chunk by chunk, continuing the session's state.
  keep_logits(s, s.lm().prefill(tokens.data(), 1, static_cast<int>(tokens.size()), s.state));
  return logits();
}

std::span<const float> Session::step(int32_t token) {
  apply_num_threads();
  detail::SessionImpl& s = *impl_;
  check_token(s, token, "Session::step");
  keep_logits(s, s.lm().step(&token, s.state));
  return logits();
}

std::span<const float> Session::logits() const {
  if (impl_->logits.empty()) return {};
  return {impl_->logits.data(), static_cast<size_t>(impl_->vocab())};
}

int32_t Session::sample() {
  detail::SessionImpl& s = *impl_;
  HIPPO_CHECK(!s.logits.empty(),
              "Session::sample: no logits yet (prefill a prompt or step a token first)");
  return s.sampler.sample(s.logits.data(), s.vocab(), s.state.position);
}

void Session::set_sampling(const SamplingParams& sampling) {
  impl_->sampler = Sampler({sampling.temperature, sampling.top_k, sampling.top_p}, sampling.seed);
  impl_->sampling = sampling;
}

const SamplingParams& Session::sampling() const { return impl_->sampling; }

Session Session::fork() const {
  auto copy = std::make_unique<detail::SessionImpl>(impl_->model, impl_->sampling);
  copy->state = clone_state(impl_->state);
  copy->logits = impl_->logits;
  copy->sampler = impl_->sampler;  // same position in the random stream
  return Session(std::move(copy));
}

void Session::reset() {
  impl_->state = impl_->lm().new_state(1);
  impl_->logits.clear();
  set_sampling(impl_->sampling);
}

namespace {

// A restored state replaces the session's only if it is one sequence with logits.
void adopt_state(detail::SessionImpl& s, ModelState&& st, std::vector<float>&& logits,
                 const std::string& source) {
  HIPPO_CHECK(st.batch == 1, source, ": the state holds ", st.batch,
              " sequences; a Session holds one");
  s.state = std::move(st);
  s.logits = std::move(logits);
}

}  // namespace

void Session::save(const std::string& path) const {
  HIPPO_CHECK(!impl_->logits.empty(), "Session::save: nothing to save (no token consumed yet)");
  check_state_output_path(path, "Session::save", {impl_->model->path()});
  save_state(path, impl_->lm(), impl_->state, impl_->logits.data());
}

void Session::restore(const std::string& path) {
  std::vector<float> logits;
  ModelState st = load_state(path, impl_->lm(), &logits);
  adopt_state(*impl_, std::move(st), std::move(logits), path);
}

std::vector<uint8_t> Session::save_bytes() const {
  HIPPO_CHECK(!impl_->logits.empty(),
              "Session::save_bytes: nothing to save (no token consumed yet)");
  return save_state_bytes(impl_->lm(), impl_->state, impl_->logits.data());
}

void Session::restore_bytes(std::span<const uint8_t> bytes) {
  std::vector<float> logits;
  ModelState st = load_state_bytes(bytes, impl_->lm(), &logits, "Session::restore_bytes");
  adopt_state(*impl_, std::move(st), std::move(logits), "Session::restore_bytes");
}

int64_t Session::state_bytes() const {
  return hippo::state_bytes(impl_->state) + static_cast<int64_t>(impl_->logits.size() * 4);
}

void step_batch(std::span<Session* const> sessions, std::span<const int32_t> tokens) {
  HIPPO_CHECK(sessions.size() == tokens.size(), "step_batch: ", sessions.size(),
              " sessions but ", tokens.size(), " tokens (one token per session)");
  if (sessions.empty()) return;
  apply_num_threads();
  std::unordered_set<const Session*> seen;
  for (size_t i = 0; i < sessions.size(); ++i) {
    HIPPO_CHECK(sessions[i] != nullptr, "step_batch: session ", i, " is null");
    HIPPO_CHECK(seen.insert(sessions[i]).second, "step_batch: session ", i,
                " appears twice (each session consumes one token per step)");
    HIPPO_CHECK(&sessions[i]->model() == &sessions[0]->model(), "step_batch: session ", i,
                " belongs to another model than session 0 (", sessions[i]->model().path(), " vs ",
                sessions[0]->model().path(), ")");
    check_token(sessions[i]->impl(), tokens[i], "step_batch");
  }
  const LanguageModel& lm = sessions[0]->impl().lm();
  std::vector<ModelState*> states(sessions.size());
  for (size_t i = 0; i < sessions.size(); ++i) states[i] = &sessions[i]->impl().state;
  lm.step_many(tokens.data(), states);
  for (Session* s : sessions) keep_logits(s->impl(), s->impl().state.logits.data());
}

}  // namespace hippo
