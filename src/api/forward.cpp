// hippo::forward_logits (include/hippo/forward.hpp): every position's logits, with a state of
// its own so that it is const on the shared Model.
#include "hippo/forward.hpp"

#include <climits>

#include "api/impl.h"
#include "core/error.h"
#include "core/threads.h"

namespace hippo {

void forward_logits(const Model& model, std::span<const int32_t> tokens, int batch, int length,
                    std::span<float> logits) {
  apply_num_threads();
  HIPPO_CHECK(batch >= 1 && length >= 1, "forward_logits: batch ", batch, " and length ", length,
              " must be >= 1");
  const int64_t rows = static_cast<int64_t>(batch) * length;
  HIPPO_CHECK(static_cast<int64_t>(tokens.size()) == rows, "forward_logits: ", tokens.size(),
              " tokens for batch ", batch, " x length ", length);
  const int V = model.info().vocab_size;
  HIPPO_CHECK(static_cast<int64_t>(logits.size()) == rows * V, "forward_logits: room for ",
              logits.size(), " logits; batch ", batch, " x length ", length, " x vocab ", V,
              " needed");
  for (size_t i = 0; i < tokens.size(); ++i)
    HIPPO_CHECK(tokens[i] >= 0 && tokens[i] < V, "forward_logits: token id ", tokens[i],
                " (position ", i, ") is outside the vocabulary [0, ", V, ") of ", model.path());
  const LanguageModel& lm = *model.impl().lm;
  HIPPO_CHECK(!lm.config().learned_pos || length <= lm.config().max_position,
              "forward_logits: length ", length, " is beyond the model's max_position ",
              lm.config().max_position);
  ModelState state = lm.new_state(batch);
  lm.forward_all(tokens.data(), batch, length, state, logits.data());
}

std::vector<float> forward_logits(const Model& model, std::span<const int32_t> tokens, int batch,
                                  int length) {
  HIPPO_CHECK(batch >= 1 && length >= 1, "forward_logits: batch ", batch, " and length ", length,
              " must be >= 1");
  std::vector<float> out(static_cast<size_t>(batch) * length * model.info().vocab_size);
  forward_logits(model, tokens, batch, length, out);
  return out;
}

}  // namespace hippo
