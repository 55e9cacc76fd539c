// Reference case "adamw": three parameters, one per ParamKind ("w" Decay, "b" NoDecay,
// "log_dt" SsmDynamics), updated for meta.steps steps with gradients "g<step>.<name>" and
// learning-rate multipliers meta.scales[step]. Outputs the final parameters.
#include "tools/ref_case.h"
#include "train/adamw.h"

namespace hippo::ref {
namespace {

void run_adamw(const nlohmann::json& meta, const Tensors& in, Tensors& out) {
  const std::pair<const char*, ParamKind> kinds[] = {
      {"w", ParamKind::Decay}, {"b", ParamKind::NoDecay}, {"log_dt", ParamKind::SsmDynamics}};
  std::vector<Param> ps;
  ps.reserve(3);
  ParamList list;
  for (auto& [name, kind] : kinds) {
    const Tensor& t = input(in, name);
    ps.push_back(make_param(t.shape(), kind));
    ps.back().value.copy_from(t);
    list.push_back({name, &ps.back()});
  }
  AdamWOptions o;
  o.lr = meta.at("lr");
  o.weight_decay = meta.at("weight_decay");
  o.beta1 = meta.value("beta1", 0.9f);
  o.beta2 = meta.value("beta2", 0.999f);
  o.eps = meta.value("eps", 1e-8f);
  AdamW opt(list, o);
  const int steps = meta.at("steps");
  for (int s = 0; s < steps; ++s) {
    for (auto& p : list) p.param->grad.copy_from(input(in, str("g", s, ".", p.name)));
    opt.step(meta.at("scales")[s].get<float>());
  }
  for (auto& p : list) out[p.name] = p.param->value.clone();
}

HIPPO_REF_CASE("adamw", run_adamw);

}  // namespace
}  // namespace hippo::ref
