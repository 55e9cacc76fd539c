// hippo_ref IN.safetensors OUT.safetensors
// IN's __metadata__ holds "case" (a registered case name) and "meta" (JSON for the case).
#include <cstdio>
#include <vector>

#include "io/safetensors.h"
#include "tools/ref_case.h"

namespace hippo::ref {

static std::map<std::string, CaseFn>& registry() {
  static std::map<std::string, CaseFn> r;
  return r;
}

bool register_case(const std::string& name, CaseFn fn) {
  registry()[name] = std::move(fn);
  return true;
}

const Tensor& input(const Tensors& in, const std::string& name) {
  auto it = in.find(name);
  HIPPO_CHECK(it != in.end(), "reference case: missing input tensor '", name, "'");
  return it->second;
}

void load_params(const ParamList& params, const Tensors& in) {
  for (auto& p : params) {
    const Tensor& t = input(in, p.name);
    HIPPO_CHECK(t.shape() == p.param->value.shape(), "reference case: parameter '", p.name,
                "' has shape ", shape_str(t.shape()), ", layer expects ",
                shape_str(p.param->value.shape()));
    p.param->value.copy_from(t);
  }
}

void store_grads(const ParamList& params, Tensors& out) {
  for (auto& p : params) out["grad." + p.name] = p.param->grad.clone();
}

void run_mixer_case(Mixer& mixer, const nlohmann::json& meta, const Tensors& in, Tensors& out) {
  ParamList params;
  mixer.collect_params("", params);
  load_params(params, in);
  const Tensor& x = input(in, "x");
  const Tensor& dy = input(in, "dy");
  int B = static_cast<int>(x.size(0)), L = static_cast<int>(x.size(1));
  int64_t d = x.size(2);
  Tensor y = Tensor::zeros(x.shape()), dx = Tensor::zeros(x.shape());
  mixer.forward(x.data(), y.data(), B, L);
  mixer.backward(dy.data(), dx.data());
  out["y"] = y;
  out["dx"] = dx;
  store_grads(params, out);
  if (meta.value("recurrent", false)) {
    // Token by token from a fresh state.
    Tensor ys = Tensor::zeros(x.shape()), xt = Tensor::zeros({B, d}), yt = Tensor::zeros({B, d});
    auto st = mixer.new_state(B);
    for (int t = 0; t < L; ++t) {
      for (int b = 0; b < B; ++b)
        for (int64_t c = 0; c < d; ++c) xt[b * d + c] = x[(static_cast<int64_t>(b) * L + t) * d + c];
      mixer.step(xt.data(), yt.data(), *st);
      for (int b = 0; b < B; ++b)
        for (int64_t c = 0; c < d; ++c) ys[(static_cast<int64_t>(b) * L + t) * d + c] = yt[b * d + c];
    }
    out["y_step"] = ys;
    // Prefill P tokens, then step through the rest.
    int P = meta.value("prefill", L / 2);
    Tensor xp = Tensor::zeros({B, P, d}), yp = Tensor::zeros({B, P, d});
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < P; ++t)
        for (int64_t c = 0; c < d; ++c)
          xp[(static_cast<int64_t>(b) * P + t) * d + c] = x[(static_cast<int64_t>(b) * L + t) * d + c];
    auto st2 = mixer.new_state(B);
    mixer.prefill(xp.data(), yp.data(), B, P, *st2);
    Tensor yps = Tensor::zeros(x.shape());
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < P; ++t)
        for (int64_t c = 0; c < d; ++c)
          yps[(static_cast<int64_t>(b) * L + t) * d + c] = yp[(static_cast<int64_t>(b) * P + t) * d + c];
    for (int t = P; t < L; ++t) {
      for (int b = 0; b < B; ++b)
        for (int64_t c = 0; c < d; ++c) xt[b * d + c] = x[(static_cast<int64_t>(b) * L + t) * d + c];
      mixer.step(xt.data(), yt.data(), *st2);
      for (int b = 0; b < B; ++b)
        for (int64_t c = 0; c < d; ++c) yps[(static_cast<int64_t>(b) * L + t) * d + c] = yt[b * d + c];
    }
    out["y_prefill_step"] = yps;
  }
}

}  // namespace hippo::ref

int main(int argc, char** argv) {
  using namespace hippo;
  if (argc != 3) {
    std::fprintf(stderr, "usage: hippo_ref IN.safetensors OUT.safetensors\n");
    return 2;
  }
  try {
    SafeTensors st = load_safetensors(argv[1]);
    HIPPO_CHECK(st.metadata.count("case"), argv[1], ": __metadata__.case is missing");
    std::string name = st.metadata["case"];
    auto it = ref::registry().find(name);
    HIPPO_CHECK(it != ref::registry().end(), argv[1], ": unknown reference case '", name, "'");
    nlohmann::json meta = nlohmann::json::parse(st.metadata.count("meta") ? st.metadata["meta"] : "{}");
    ref::Tensors out;
    it->second(meta, st.tensors, out);
    std::vector<NamedTensor> list;
    for (auto& [k, v] : out) list.push_back({k, &v});
    save_safetensors(argv[2], list);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hippo_ref: %s\n", e.what());
    return 1;
  }
  return 0;
}
