// Prefill and evaluation of sequences of any length in chunks (docs/design.md "Chunked
// prefill and evaluation"): the model runs chunk after chunk, every layer continuing from its
// state (SSM state passing, attention's KV cache), so memory is one chunk's activations.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/phase_profile.h"
#include "kernels/cross_entropy.h"
#include "models/lm.h"

namespace hippo {

int default_prefill_chunk() {
  static const int chunk = [] {
    const char* env = std::getenv("HIPPO_PREFILL_CHUNK");
    if (env == nullptr || *env == '\0') return kDefaultPrefillChunk;
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    HIPPO_CHECK(end != env && *end == '\0' && v >= 1 && v <= (1 << 24),
                "HIPPO_PREFILL_CHUNK='", env, "' must be an integer in [1, 16777216]");
    return static_cast<int>(v);
  }();
  return chunk;
}

void LanguageModel::check_sequence(const char* what, int B, int L,
                                   const ModelState& state) const {
  HIPPO_CHECK(state.batch >= 1 && static_cast<int>(state.layers.size()) == cfg_.n_layer, what,
              ": the state has ", state.layers.size(), " layers and batch ", state.batch,
              "; the model has ", cfg_.n_layer, " layers (use the model's new_state)");
  HIPPO_CHECK(B == state.batch, what, ": batch ", B, " but the state was made for batch ",
              state.batch);
  HIPPO_CHECK(L >= 1, what, ": length must be >= 1, got ", L);
  HIPPO_CHECK(state.chunk >= 1, what, ": the state's chunk ", state.chunk, " must be >= 1");
  HIPPO_CHECK(!cfg_.learned_pos || state.position + L <= cfg_.max_position, "generation: position ",
              state.position + L - 1, " is beyond the model's max_position ", cfg_.max_position);
}

template <class Fn>
void LanguageModel::for_each_chunk(const int32_t* tokens, int B, int L, int chunk,
                                   Fn&& fn) const {
  std::vector<int32_t> rows;
  for (int off = 0; off < L; off += chunk) {
    const int len = std::min(chunk, L - off);
    const int32_t* t = tokens + off;
    if (B > 1 && len < L) {  // rows of the chunk are L apart in the input
      rows.resize(static_cast<size_t>(B) * len);
      for (int b = 0; b < B; ++b)
        std::memcpy(rows.data() + static_cast<size_t>(b) * len,
                    tokens + static_cast<int64_t>(b) * L + off, sizeof(int32_t) * len);
      t = rows.data();
    }
    fn(t, off, len);
  }
}

void LanguageModel::run_chunk(const int32_t* tokens, int B, int L, ModelState& state) const {
  const int d = cfg_.d_model;
  const int64_t rows = static_cast<int64_t>(B) * L, n = rows * d;
  // Not zeroed (a prefill allocates them per call): embed, the norms and every mixer's and the
  // MLP's prefill write all n floats before anything reads them (ChunkedPrefill.Uninit*).
  float* r = state.resid.get_uninit(static_cast<size_t>(n));
  float* normed = state.normed.get_uninit(static_cast<size_t>(n));
  float* branch = state.branch.get_uninit(static_cast<size_t>(n));
  { prof::Scope ps("pre.embed"); embed(tokens, B, L, state.position, r); }
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = *blocks_[i];
    { prof::Scope ps("pre.norm"); b.norm1.forward_inference(r, normed, rows, state.stats); }
    {
      prof::Scope ps("pre.mixer");
      b.mixer->prefill(normed, branch, B, L, *state.layers[i], state.work);
    }
    { prof::Scope ps("pre.resid"); for (int64_t j = 0; j < n; ++j) r[j] += branch[j]; }
    { prof::Scope ps("pre.norm"); b.norm2.forward_inference(r, normed, rows, state.stats); }
    { prof::Scope ps("pre.mlp"); b.mlp.forward_inference(normed, branch, rows, state.hidden); }
    { prof::Scope ps("pre.resid"); for (int64_t j = 0; j < n; ++j) r[j] += branch[j]; }
  }
  state.position += L;
}

namespace {
// Frees a sequence's scratch and the layers' chunk caches when prefill or score returns,
// normally or by an exception: a state kept for decoding holds what decoding needs.
struct ReleaseScratch {
  ModelState& st;
  ~ReleaseScratch() {
    release_buffers(st.resid, st.normed, st.branch, st.hidden, st.stats, st.final);
    st.work.release();
    for (auto& l : st.layers) l->release_prefill_cache();
  }
};
}  // namespace

// Const, and every buffer it writes is the state's: see the thread rules in lm.h.
const float* LanguageModel::prefill(const int32_t* tokens, int B, int L,
                                    ModelState& state) const {
  check_sequence("prefill", B, L, state);
  const int d = cfg_.d_model;
  const float* logits = nullptr;
  {
    ReleaseScratch release{state};
    for (auto& l : state.layers) l->release_prefill_cache();  // parameters may have changed
    int last = 0;
    for_each_chunk(tokens, B, L, state.chunk, [&](const int32_t* t, int, int len) {
      run_chunk(t, B, len, state);
      last = len;
    });
    // Only the last position of each sequence needs logits.
    float* r = state.resid.data();
    float* normed = state.normed.data();
    for (int bi = 0; bi < B; ++bi)
      std::memmove(normed + static_cast<int64_t>(bi) * d,
                   r + (static_cast<int64_t>(bi) * last + last - 1) * d, sizeof(float) * d);
    logits = head(normed, B, state);
  }
  return logits;
}

LossStats LanguageModel::score(const int32_t* tokens, const int32_t* targets, int B, int L,
                               ModelState& state, float* nll) const {
  check_sequence("score", B, L, state);
  const int d = cfg_.d_model;
  const int64_t V = cfg_.padded_vocab();
  // Rows of logits at a time: 256 x V floats (51 MB at GPT-2's vocabulary).
  constexpr int64_t kHeadRows = 256;
  ReleaseScratch release{state};
  for (auto& l : state.layers) l->release_prefill_cache();
  double nats = 0;
  LossStats total;
  std::vector<int32_t> tg;
  for_each_chunk(tokens, B, L, state.chunk, [&](const int32_t* t, int off, int len) {
    run_chunk(t, B, len, state);
    const float* r = state.resid.data();
    for (int b = 0; b < B; ++b)
      for (int64_t j0 = 0; j0 < len; j0 += kHeadRows) {
        const int64_t m = std::min<int64_t>(kHeadRows, len - j0);
        const float* lg = head(r + (static_cast<int64_t>(b) * len + j0) * d, m, state);
        for (int64_t j = 0; j < m; ++j) {
          const int64_t at = static_cast<int64_t>(b) * L + off + j0 + j;
          const int32_t target = targets[at];
          int64_t correct = 0, valid = 0;
          const double loss = cross_entropy(lg + j * V, &target, nullptr, 1, V, &correct, &valid);
          if (nll) nll[at] = static_cast<float>(loss);
          nats += loss * static_cast<double>(valid);
          total.count += valid;
          total.correct += correct;
        }
      }
  });
  total.loss = total.count > 0 ? nats / static_cast<double>(total.count) : 0.0;
  release_buffers(state.logits);  // a block of rows' logits: score returns none
  return total;
}

void LanguageModel::forward_all(const int32_t* tokens, int B, int L, ModelState& state,
                                float* logits) const {
  check_sequence("forward", B, L, state);
  const int d = cfg_.d_model;
  const int64_t V = cfg_.vocab_size, Vp = cfg_.padded_vocab();
  constexpr int64_t kHeadRows = 64;  // head scratch: kHeadRows x padded vocab floats
  ReleaseScratch release{state};
  for (auto& l : state.layers) l->release_prefill_cache();
  for_each_chunk(tokens, B, L, state.chunk, [&](const int32_t* t, int off, int len) {
    run_chunk(t, B, len, state);
    const float* r = state.resid.data();
    for (int b = 0; b < B; ++b)
      for (int64_t j0 = 0; j0 < len; j0 += kHeadRows) {
        const int64_t m = std::min<int64_t>(kHeadRows, len - j0);
        const float* lg = head(r + (static_cast<int64_t>(b) * len + j0) * d, m, state);
        for (int64_t j = 0; j < m; ++j)
          std::memcpy(logits + (static_cast<int64_t>(b) * L + off + j0 + j) * V, lg + j * Vp,
                      sizeof(float) * static_cast<size_t>(V));
      }
  });
  release_buffers(state.logits);
}

}  // namespace hippo
