// The C API (include/hippo/hippo.h) over the C++ one: every entry catches everything, turns it
// into a status code and a thread-local message; nothing throws across the boundary.
#include "hippo/hippo.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "hippo/hippo.hpp"

struct hippo_model {
  std::shared_ptr<const hippo::Model> model;
};
struct hippo_session {
  hippo::Session session;
};

namespace {

thread_local std::string g_last_error;

hippo_status set_error(hippo_status st, std::string message) {
  g_last_error = std::move(message);
  return st;
}

// Runs f, mapping exceptions to status codes.
template <class F>
hippo_status guarded(F&& f) {
  try {
    g_last_error.clear();
    return f();
  } catch (const hippo::Error& e) {
    return set_error(HIPPO_ERR_FAILED, e.what());
  } catch (const std::bad_alloc&) {
    return set_error(HIPPO_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return set_error(HIPPO_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return set_error(HIPPO_ERR_INTERNAL, "internal error (unknown exception)");
  }
}

hippo_status invalid(const char* message) { return set_error(HIPPO_ERR_INVALID_ARGUMENT, message); }

}  // namespace

extern "C" {

const char* hippo_last_error(void) { return g_last_error.c_str(); }
const char* hippo_version(void) { return hippo::version(); }
void hippo_set_num_threads(int32_t n) { hippo::set_num_threads(n); }

hippo_sampling hippo_sampling_default(void) {
  hippo_sampling s;
  s.temperature = 1.0f;
  s.top_k = 0;
  s.top_p = 1.0f;
  s.seed = 0;
  return s;
}

hippo_status hippo_model_load(const char* path, hippo_model** out) {
  if (!path || !out) return invalid("hippo_model_load: path and out must not be NULL");
  *out = nullptr;
  return guarded([&] {
    auto m = hippo::Model::load(path);
    *out = new hippo_model{std::move(m)};
    return HIPPO_OK;
  });
}

void hippo_model_free(hippo_model* model) { delete model; }

int32_t hippo_model_vocab_size(const hippo_model* model) {
  return model ? model->model->info().vocab_size : 0;
}
int32_t hippo_model_eot(const hippo_model* model) {
  return model ? model->model->tokenizer().eot_id() : -1;
}
int64_t hippo_model_num_params(const hippo_model* model) {
  return model ? model->model->info().num_params : 0;
}

hippo_status hippo_tokenize(const hippo_model* model, const char* text, size_t text_len,
                            int32_t* out, size_t capacity, size_t* n_out) {
  if (!model || (!text && text_len > 0) || !n_out)
    return invalid("hippo_tokenize: model, text and n_out must not be NULL");
  return guarded([&] {
    const auto ids = model->model->tokenizer().encode_with_special(
        std::string_view(text ? text : "", text_len));
    *n_out = ids.size();
    if (ids.size() > capacity || (!out && !ids.empty()))
      return set_error(HIPPO_ERR_BUFFER_TOO_SMALL,
                       "hippo_tokenize: the output holds " + std::to_string(capacity) +
                           " tokens, " + std::to_string(ids.size()) + " needed");
    if (!ids.empty()) std::memcpy(out, ids.data(), ids.size() * sizeof(int32_t));
    return HIPPO_OK;
  });
}

hippo_status hippo_detokenize(const hippo_model* model, const int32_t* tokens, size_t n,
                              char* out, size_t capacity, size_t* len_out) {
  if (!model || (!tokens && n > 0) || !len_out)
    return invalid("hippo_detokenize: model, tokens and len_out must not be NULL");
  return guarded([&] {
    const std::string text = model->model->tokenizer().decode(std::span<const int32_t>(tokens, n));
    *len_out = text.size();
    // One more byte for the terminating NUL.
    if (text.size() + 1 > capacity || !out)
      return set_error(HIPPO_ERR_BUFFER_TOO_SMALL,
                       "hippo_detokenize: the output holds " + std::to_string(capacity) +
                           " bytes, " + std::to_string(text.size() + 1) + " needed (with NUL)");
    std::memcpy(out, text.data(), text.size());
    out[text.size()] = '\0';
    return HIPPO_OK;
  });
}

hippo_status hippo_session_new(const hippo_model* model, hippo_session** out) {
  if (!model || !out) return invalid("hippo_session_new: model and out must not be NULL");
  *out = nullptr;
  return guarded([&] {
    *out = new hippo_session{hippo::Session(model->model)};
    return HIPPO_OK;
  });
}

void hippo_session_free(hippo_session* session) { delete session; }

hippo_status hippo_session_prefill(hippo_session* s, const int32_t* tokens, size_t n) {
  if (!s || !tokens || n == 0)
    return invalid("hippo_session_prefill: session and tokens must not be NULL, n > 0");
  return guarded([&] {
    s->session.prefill(std::span<const int32_t>(tokens, n));
    return HIPPO_OK;
  });
}

hippo_status hippo_session_step(hippo_session* s, int32_t token) {
  if (!s) return invalid("hippo_session_step: session must not be NULL");
  return guarded([&] {
    s->session.step(token);
    return HIPPO_OK;
  });
}

hippo_status hippo_session_step_batch(hippo_session* const* sessions, const int32_t* tokens,
                                      size_t n) {
  if (n > 0 && (!sessions || !tokens))
    return invalid("hippo_session_step_batch: sessions and tokens must not be NULL");
  return guarded([&] {
    std::vector<hippo::Session*> ss(n);
    for (size_t i = 0; i < n; ++i) {
      if (!sessions[i])
        return set_error(HIPPO_ERR_INVALID_ARGUMENT,
                         "hippo_session_step_batch: session " + std::to_string(i) + " is NULL");
      ss[i] = &sessions[i]->session;
    }
    hippo::step_batch(ss, std::span<const int32_t>(tokens, n));
    return HIPPO_OK;
  });
}

const float* hippo_session_logits(const hippo_session* s, int32_t* n_vocab) {
  if (!s) {
    if (n_vocab) *n_vocab = 0;
    return nullptr;
  }
  const auto l = s->session.logits();
  if (n_vocab) *n_vocab = static_cast<int32_t>(l.size());
  return l.empty() ? nullptr : l.data();
}

int64_t hippo_session_position(const hippo_session* s) { return s ? s->session.position() : -1; }

hippo_status hippo_session_set_sampling(hippo_session* s, const hippo_sampling* p) {
  if (!s || !p) return invalid("hippo_session_set_sampling: session and params must not be NULL");
  return guarded([&] {
    s->session.set_sampling({p->temperature, p->top_k, p->top_p, p->seed});
    return HIPPO_OK;
  });
}

hippo_status hippo_session_sample(hippo_session* s, int32_t* token) {
  if (!s || !token) return invalid("hippo_session_sample: session and token must not be NULL");
  return guarded([&] {
    *token = s->session.sample();
    return HIPPO_OK;
  });
}

hippo_status hippo_session_fork(const hippo_session* s, hippo_session** out) {
  if (!s || !out) return invalid("hippo_session_fork: session and out must not be NULL");
  *out = nullptr;
  return guarded([&] {
    *out = new hippo_session{s->session.fork()};
    return HIPPO_OK;
  });
}

hippo_status hippo_session_reset(hippo_session* s) {
  if (!s) return invalid("hippo_session_reset: session must not be NULL");
  return guarded([&] {
    s->session.reset();
    return HIPPO_OK;
  });
}

hippo_status hippo_session_save(const hippo_session* s, const char* path) {
  if (!s || !path) return invalid("hippo_session_save: session and path must not be NULL");
  return guarded([&] {
    s->session.save(path);
    return HIPPO_OK;
  });
}

hippo_status hippo_session_restore(hippo_session* s, const char* path) {
  if (!s || !path) return invalid("hippo_session_restore: session and path must not be NULL");
  return guarded([&] {
    s->session.restore(path);
    return HIPPO_OK;
  });
}

hippo_status hippo_session_save_bytes(const hippo_session* s, uint8_t** bytes, size_t* len) {
  if (!s || !bytes || !len)
    return invalid("hippo_session_save_bytes: session, bytes and len must not be NULL");
  *bytes = nullptr;
  *len = 0;
  return guarded([&] {
    const std::vector<uint8_t> b = s->session.save_bytes();
    auto* p = static_cast<uint8_t*>(std::malloc(b.size()));
    if (!p) throw std::bad_alloc();
    std::memcpy(p, b.data(), b.size());
    *bytes = p;
    *len = b.size();
    return HIPPO_OK;
  });
}

hippo_status hippo_session_restore_bytes(hippo_session* s, const uint8_t* bytes, size_t len) {
  if (!s || !bytes || len == 0)
    return invalid("hippo_session_restore_bytes: session and bytes must not be NULL, len > 0");
  return guarded([&] {
    s->session.restore_bytes(std::span<const uint8_t>(bytes, len));
    return HIPPO_OK;
  });
}

void hippo_free_bytes(uint8_t* bytes) { std::free(bytes); }

}  // extern "C"
