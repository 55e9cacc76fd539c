/* Drives the C API (include/hippo/hippo.h) from C11: load, tokenize, prefill, greedy steps,
 * step_batch, fork, save/restore to bytes and to a file, detokenize, and the error paths.
 * Usage: c_api_check MODEL STATE_FILE PROMPT N. Prints the generated token ids on one line
 * ("tokens: 1 2 3") for the caller to compare with the C++ API; exits 1 on any mismatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hippo/hippo.h"

static int failures = 0;

#define CHECK(cond, ...)                                       \
  do {                                                         \
    if (!(cond)) {                                             \
      fprintf(stderr, "c_api_check:%d: ", __LINE__);           \
      fprintf(stderr, __VA_ARGS__);                            \
      fprintf(stderr, " (last error: %s)\n", hippo_last_error()); \
      ++failures;                                              \
    }                                                          \
  } while (0)

#define OK(call) CHECK((call) == HIPPO_OK, "%s failed", #call)

static int same_logits(const hippo_session* a, const hippo_session* b) {
  int32_t na = 0, nb = 0;
  const float* la = hippo_session_logits(a, &na);
  const float* lb = hippo_session_logits(b, &nb);
  return la && lb && na == nb && memcmp(la, lb, sizeof(float) * (size_t)na) == 0;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: c_api_check MODEL STATE_FILE PROMPT N\n");
    return 2;
  }
  const char* prompt = argv[3];
  const int n = atoi(argv[4]);
  hippo_model* model = NULL;
  if (hippo_model_load(argv[1], &model) != HIPPO_OK) {
    fprintf(stderr, "load failed: %s\n", hippo_last_error());
    return 1;
  }
  const int32_t V = hippo_model_vocab_size(model);
  CHECK(V > 0 && hippo_model_num_params(model) > 0, "model info");

  /* Tokenize: asking for the size first, then into a buffer of that size. */
  size_t n_tok = 0;
  CHECK(hippo_tokenize(model, prompt, strlen(prompt), NULL, 0, &n_tok) == HIPPO_ERR_BUFFER_TOO_SMALL,
        "tokenize without room");
  int32_t* ids = malloc(sizeof(int32_t) * (n_tok ? n_tok : 1));
  OK(hippo_tokenize(model, prompt, strlen(prompt), ids, n_tok, &n_tok));

  hippo_session* s = NULL;
  OK(hippo_session_new(model, &s));
  CHECK(hippo_session_logits(s, NULL) == NULL, "logits before any token");
  hippo_sampling greedy = hippo_sampling_default();
  greedy.temperature = 0.0f;
  OK(hippo_session_set_sampling(s, &greedy));
  OK(hippo_session_prefill(s, ids, n_tok));
  CHECK(hippo_session_position(s) == (int64_t)n_tok, "position after prefill");

  /* Fork and bytes snapshot after the prompt. */
  hippo_session* f = NULL;
  OK(hippo_session_fork(s, &f));
  uint8_t* bytes = NULL;
  size_t len = 0;
  OK(hippo_session_save_bytes(s, &bytes, &len));
  OK(hippo_session_save(s, argv[2]));

  int32_t* made = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
  for (int i = 0; i < n; ++i) {
    OK(hippo_session_sample(s, &made[i]));
    OK(hippo_session_step(s, made[i]));
  }

  /* A session restored from bytes, one from the file, and the fork, stepped as a batch with
   * the same tokens, end where the original did. */
  hippo_session* r = NULL;
  hippo_session* rf = NULL;
  OK(hippo_session_new(model, &r));
  OK(hippo_session_new(model, &rf));
  OK(hippo_session_restore_bytes(r, bytes, len));
  OK(hippo_session_restore(rf, argv[2]));
  hippo_session* batch[3] = {f, r, rf};
  for (int i = 0; i < n; ++i) {
    const int32_t toks[3] = {made[i], made[i], made[i]};
    OK(hippo_session_step_batch(batch, toks, 3));
  }
  CHECK(same_logits(s, f), "fork + step_batch differs from the original");
  CHECK(same_logits(s, r), "restored bytes + step_batch differ from the original");
  CHECK(same_logits(s, rf), "restored file + step_batch differ from the original");

  /* Error paths: a status code and a message, never a crash. */
  CHECK(hippo_session_step(s, -1) == HIPPO_ERR_FAILED && strlen(hippo_last_error()) > 0,
        "bad token id accepted");
  CHECK(hippo_session_step(NULL, 1) == HIPPO_ERR_INVALID_ARGUMENT, "NULL session accepted");
  CHECK(hippo_session_restore_bytes(r, bytes, len / 2) == HIPPO_ERR_FAILED, "truncated state accepted");
  hippo_model* missing = NULL;
  CHECK(hippo_model_load("/nonexistent/model.safetensors", &missing) == HIPPO_ERR_FAILED &&
            missing == NULL && strstr(hippo_last_error(), "/nonexistent/model.safetensors"),
        "missing model file");

  /* Detokenize the prompt back. */
  size_t text_len = 0;
  CHECK(hippo_detokenize(model, ids, n_tok, NULL, 0, &text_len) == HIPPO_ERR_BUFFER_TOO_SMALL,
        "detokenize without room");
  char* text = malloc(text_len + 1);
  OK(hippo_detokenize(model, ids, n_tok, text, text_len + 1, &text_len));
  CHECK(strcmp(text, prompt) == 0, "detokenize(tokenize(prompt)) = '%s'", text);

  printf("tokens:");
  for (int i = 0; i < n; ++i) printf(" %d", made[i]);
  printf("\n");

  free(text);
  free(made);
  free(ids);
  hippo_free_bytes(bytes);
  hippo_session_free(rf);
  hippo_session_free(r);
  hippo_session_free(f);
  hippo_session_free(s);
  hippo_model_free(model);
  if (failures) fprintf(stderr, "c_api_check: %d failure(s)\n", failures);
  return failures ? 1 : 0;
}
