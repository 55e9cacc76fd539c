/* hippo's C API: opaque handles, status codes, no exceptions across the boundary. Every call
 * returning hippo_status sets a thread-local message on failure (hippo_last_error()). A model is
 * immutable after load and may be shared by threads; a session is used by one thread at a time.
 * Pointers returned by the library (logits, error text) stay valid until the next call on the
 * same handle (error text: the next failing call on the same thread). */
#ifndef HIPPO_H
#define HIPPO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hippo_status {
  HIPPO_OK = 0,
  HIPPO_ERR_INVALID_ARGUMENT = 1, /* a null handle, an empty or out-of-range input */
  HIPPO_ERR_FAILED = 2,           /* a hippo::Error: bad file, mismatched state, ... */
  HIPPO_ERR_OUT_OF_MEMORY = 3,
  HIPPO_ERR_BUFFER_TOO_SMALL = 4, /* the needed size is returned; call again */
  HIPPO_ERR_INTERNAL = 5
} hippo_status;

typedef struct hippo_model hippo_model;
typedef struct hippo_session hippo_session;

typedef struct hippo_sampling {
  float temperature; /* 0: greedy */
  int32_t top_k;     /* 0: no limit */
  float top_p;       /* 1: no limit */
  uint64_t seed;
} hippo_sampling;

/* Message of the last failed call on this thread ("" if none). */
const char* hippo_last_error(void);
const char* hippo_version(void);
void hippo_set_num_threads(int32_t n); /* <= 0: all cores */
hippo_sampling hippo_sampling_default(void); /* temperature 1, top_k 0, top_p 1, seed 0 */

/* Models. */
hippo_status hippo_model_load(const char* path, hippo_model** out);
void hippo_model_free(hippo_model* model); /* sessions keep the model alive */
int32_t hippo_model_vocab_size(const hippo_model* model);
int32_t hippo_model_eot(const hippo_model* model);
int64_t hippo_model_num_params(const hippo_model* model);

/* Tokenizer of the model. n_out / len_out receive the size needed even when it does not fit
 * (HIPPO_ERR_BUFFER_TOO_SMALL). */
hippo_status hippo_tokenize(const hippo_model* model, const char* text, size_t text_len,
                            int32_t* out, size_t capacity, size_t* n_out);
hippo_status hippo_detokenize(const hippo_model* model, const int32_t* tokens, size_t n,
                              char* out, size_t capacity, size_t* len_out);

/* Sessions: one sequence each. */
hippo_status hippo_session_new(const hippo_model* model, hippo_session** out);
void hippo_session_free(hippo_session* session);
hippo_status hippo_session_prefill(hippo_session* session, const int32_t* tokens, size_t n);
hippo_status hippo_session_step(hippo_session* session, int32_t token);
/* One step of n sessions of the same model, session i consuming tokens[i]. */
hippo_status hippo_session_step_batch(hippo_session* const* sessions, const int32_t* tokens,
                                      size_t n);
/* Logits after the last token (n_vocab entries); NULL before any token. */
const float* hippo_session_logits(const hippo_session* session, int32_t* n_vocab);
int64_t hippo_session_position(const hippo_session* session);
hippo_status hippo_session_set_sampling(hippo_session* session, const hippo_sampling* params);
hippo_status hippo_session_sample(hippo_session* session, int32_t* token);
hippo_status hippo_session_fork(const hippo_session* session, hippo_session** out);
hippo_status hippo_session_reset(hippo_session* session);
hippo_status hippo_session_save(const hippo_session* session, const char* path);
hippo_status hippo_session_restore(hippo_session* session, const char* path);
/* *bytes is allocated by the library; release it with hippo_free_bytes. */
hippo_status hippo_session_save_bytes(const hippo_session* session, uint8_t** bytes, size_t* len);
hippo_status hippo_session_restore_bytes(hippo_session* session, const uint8_t* bytes, size_t len);
void hippo_free_bytes(uint8_t* bytes);

#ifdef __cplusplus
}
#endif

#endif /* HIPPO_H */
