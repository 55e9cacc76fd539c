/* The C API from C11: load a model, tokenize a prompt, prefill a session, sample tokens step by
 * step, save the state to bytes and restore it into a second session (which must then continue
 * exactly like the first), detokenize. Every call's status is checked.
 *   c_api MODEL.safetensors [PROMPT] [N_TOKENS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hippo/hippo.h>

/* Fails the program with the library's message when a call does not return HIPPO_OK. */
#define CHECK(call)                                                                   \
  do {                                                                                \
    hippo_status st_ = (call);                                                        \
    if (st_ != HIPPO_OK) {                                                            \
      fprintf(stderr, "%s:%d: %s failed (status %d): %s\n", __FILE__, __LINE__, #call, \
              (int)st_, hippo_last_error());                                          \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

static void* xmalloc(size_t n) {
  void* p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return p;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.safetensors [PROMPT] [N_TOKENS]\n", argv[0]);
    return 2;
  }
  const char* prompt = argc > 2 ? argv[2] : "The";
  const int n_tokens = argc > 3 ? atoi(argv[3]) : 16;
  printf("hippo %s\n", hippo_version());

  hippo_model* model = NULL;
  CHECK(hippo_model_load(argv[1], &model));
  printf("%lld parameters, vocabulary %d\n", (long long)hippo_model_num_params(model),
         (int)hippo_model_vocab_size(model));

  /* Tokenize. A prompt has at most one token per byte; a buffer that is too small would be
   * reported as HIPPO_ERR_BUFFER_TOO_SMALL with the size needed in n_prompt. */
  const size_t capacity = strlen(prompt) + (size_t)n_tokens + 1;
  int32_t* tokens = xmalloc(capacity * sizeof(int32_t));
  size_t n_prompt = 0;
  CHECK(hippo_tokenize(model, prompt, strlen(prompt), tokens, capacity, &n_prompt));
  if (n_prompt == 0 || n_prompt > strlen(prompt)) {
    fprintf(stderr, "hippo_tokenize: %zu tokens for %zu bytes\n", n_prompt, strlen(prompt));
    return 1;
  }
  size_t n = n_prompt;

  hippo_session* session = NULL;
  CHECK(hippo_session_new(model, &session));
  hippo_sampling sampling = hippo_sampling_default();
  sampling.temperature = 0.8f;
  sampling.seed = 7;
  CHECK(hippo_session_set_sampling(session, &sampling));
  CHECK(hippo_session_prefill(session, tokens, n));

  /* Save the state after the prompt, to bytes; a second session restored from them must pick
   * exactly the tokens the first one picks. */
  uint8_t* state = NULL;
  size_t state_len = 0;
  CHECK(hippo_session_save_bytes(session, &state, &state_len));
  hippo_session* restored = NULL;
  CHECK(hippo_session_new(model, &restored));
  CHECK(hippo_session_set_sampling(restored, &sampling));
  CHECK(hippo_session_restore_bytes(restored, state, state_len));
  hippo_free_bytes(state);
  if (hippo_session_position(restored) != (int64_t)n) {
    fprintf(stderr, "restored session at position %lld, expected %zu\n",
            (long long)hippo_session_position(restored), n);
    return 1;
  }

  for (int i = 0; i < n_tokens; ++i) {
    int32_t next = 0, next_restored = 0;
    CHECK(hippo_session_sample(session, &next));
    CHECK(hippo_session_sample(restored, &next_restored));
    if (next != next_restored) {
      fprintf(stderr, "step %d: restored session sampled %d, original %d\n", i,
              (int)next_restored, (int)next);
      return 1;
    }
    tokens[n++] = next;
    CHECK(hippo_session_step(session, next));
    CHECK(hippo_session_step(restored, next));
  }
  int32_t n_vocab = 0;
  const float* logits = hippo_session_logits(session, &n_vocab);
  if (!logits || n_vocab != hippo_model_vocab_size(model)) {
    fprintf(stderr, "hippo_session_logits: %d entries\n", (int)n_vocab);
    return 1;
  }

  /* Detokenize: the first call finds the size (too small a buffer is not an error to us). */
  char small[4];
  size_t text_len = 0;
  hippo_status st = hippo_detokenize(model, tokens, n, small, sizeof small, &text_len);
  if (st != HIPPO_OK && st != HIPPO_ERR_BUFFER_TOO_SMALL) {
    fprintf(stderr, "hippo_detokenize: status %d: %s\n", (int)st, hippo_last_error());
    return 1;
  }
  char* text = xmalloc(text_len + 1);
  size_t got = 0;
  CHECK(hippo_detokenize(model, tokens, n, text, text_len + 1, &got));
  if (got != text_len) {
    fprintf(stderr, "hippo_detokenize: %zu bytes, then %zu\n", text_len, got);
    return 1;
  }
  text[got] = '\0';
  printf("%s\n", text);

  /* A bad argument is reported as a status, not a crash. */
  if (hippo_session_step(session, -1) == HIPPO_OK) {
    fprintf(stderr, "hippo_session_step accepted token -1\n");
    return 1;
  }
  printf("rejected token -1: %s\n", hippo_last_error());

  free(text);
  free(tokens);
  hippo_session_free(restored);
  hippo_session_free(session);
  hippo_model_free(model);
  return 0;
}
