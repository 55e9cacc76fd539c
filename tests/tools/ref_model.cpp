// Reference case "model": a whole language model. Inputs: official parameter names,
// "tokens" and "targets" (B, L) as floats; meta {"config": ModelConfig JSON}.
// Outputs: "logits" (B, L, V_padded), "loss" (1), "num_params" (1), "grad.<name>".
#include "models/lm.h"
#include "tools/ref_case.h"

namespace hippo::ref {
namespace {

void run_model(const nlohmann::json& meta, const Tensors& in, Tensors& out) {
  LanguageModel model(ModelConfig::from_json(meta.at("config"), "meta.config"));
  load_params(model.params(), in);
  const Tensor& tok = input(in, "tokens");
  const Tensor& tgt = input(in, "targets");
  const int B = static_cast<int>(tok.size(0)), L = static_cast<int>(tok.size(1));
  std::vector<int32_t> tokens(tok.numel()), targets(tgt.numel());
  for (int64_t i = 0; i < tok.numel(); ++i) tokens[i] = static_cast<int32_t>(tok[i]);
  for (int64_t i = 0; i < tgt.numel(); ++i) targets[i] = static_cast<int32_t>(tgt[i]);
  const int64_t V = model.config().padded_vocab();
  const float* logits = model.forward(tokens.data(), B, L);
  Tensor lg = Tensor::zeros({B, L, V});
  std::copy(logits, logits + lg.numel(), lg.data());
  LossStats s = model.loss(targets.data());
  model.zero_grad();
  model.backward();
  out["logits"] = lg;
  out["loss"] = Tensor::zeros({1});
  out["loss"][0] = static_cast<float>(s.loss);
  out["num_params"] = Tensor::zeros({1});
  out["num_params"][0] = static_cast<float>(model.num_params());
  store_grads(model.params(), out);
}

HIPPO_REF_CASE("model", run_model);

}  // namespace
}  // namespace hippo::ref
