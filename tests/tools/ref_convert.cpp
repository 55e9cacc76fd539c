// Reference case "converted_model": loads a hippo weights file (meta "weights": path, e.g. the
// output of `hippo convert`) the way `hippo generate` does, load_model_mapped (bf16 weights stay
// bf16), or with meta "loader": "copy" by load_model (all fp32), and runs it on "tokens" (B, L)
// given as floats.
// Outputs "logits" (B, L, V_padded) and, with meta "greedy": n > 0, "greedy" (B, n): the
// greedy continuation, each token the argmax over the padded vocabulary of a whole-sequence
// forward (the plain way; it checks the loaded weights, not the decoding fast path).
#include <algorithm>

#include "models/load.h"
#include "tools/ref_case.h"

namespace hippo::ref {
namespace {

void run_converted(const nlohmann::json& meta, const Tensors& in, Tensors& out) {
  const std::string weights = meta.at("weights").get<std::string>();
  const std::string loader = meta.value("loader", "mapped");
  HIPPO_CHECK(loader == "mapped" || loader == "copy", "converted_model: unknown loader ", loader);
  std::unique_ptr<LanguageModel> model =
      loader == "copy" ? load_model(weights) : load_model_mapped(weights);
  const Tensor& tok = input(in, "tokens");
  const int B = static_cast<int>(tok.size(0)), L = static_cast<int>(tok.size(1));
  const int64_t V = model->config().padded_vocab();
  std::vector<int32_t> tokens(tok.numel());
  for (int64_t i = 0; i < tok.numel(); ++i) tokens[i] = static_cast<int32_t>(tok[i]);
  const float* logits = model->forward(tokens.data(), B, L);
  Tensor lg = Tensor::zeros({B, L, V});
  std::copy(logits, logits + lg.numel(), lg.data());
  out["logits"] = lg;

  const int n = meta.value("greedy", 0);
  if (n <= 0) return;
  Tensor greedy = Tensor::zeros({B, n});
  std::vector<std::vector<int32_t>> seqs(B);
  for (int b = 0; b < B; ++b) seqs[b].assign(tokens.begin() + b * L, tokens.begin() + (b + 1) * L);
  for (int t = 0; t < n; ++t) {
    const int Lt = L + t;
    std::vector<int32_t> batch;
    for (auto& s : seqs) batch.insert(batch.end(), s.begin(), s.end());
    const float* lt = model->forward(batch.data(), B, Lt);
    for (int b = 0; b < B; ++b) {
      const float* row = lt + (static_cast<int64_t>(b) * Lt + Lt - 1) * V;
      const int32_t next = static_cast<int32_t>(std::max_element(row, row + V) - row);
      seqs[b].push_back(next);
      greedy[static_cast<int64_t>(b) * n + t] = static_cast<float>(next);
    }
  }
  out["greedy"] = greedy;
}

HIPPO_REF_CASE("converted_model", run_converted);

}  // namespace
}  // namespace hippo::ref
