// Reference cases for the dense layers and kernels (tests/ref/test_dense.py).
#include <cmath>
#include <vector>

#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/gelu.h"
#include "kernels/softmax.h"
#include "nn/attention.h"
#include "nn/layernorm.h"
#include "nn/linear.h"
#include "nn/mlp.h"
#include "tools/ref_case.h"

namespace hippo::ref {
namespace {

// Integer ids travel as F32 tensors; they must be whole numbers.
std::vector<int32_t> as_ids(const Tensor& t, const char* name) {
  std::vector<int32_t> ids(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) {
    HIPPO_CHECK(t[i] == std::floor(t[i]), "reference case: '", name, "' holds a non-integer ", t[i]);
    ids[i] = static_cast<int32_t>(t[i]);
  }
  return ids;
}

int64_t rows_of(const Tensor& x) { return x.numel() / x.size(-1); }

// x (..., d), dy like y: y, dx, grad.weight, grad.bias.
void layernorm_case(const nlohmann::json& meta, const Tensors& in, Tensors& out) {
  const Tensor& x = input(in, "x");
  LayerNorm ln(static_cast<int>(x.size(-1)), meta.value("eps", 1e-5f));
  ParamList ps;
  ln.collect_params("", ps);
  load_params(ps, in);
  Tensor y = Tensor::zeros(x.shape()), dx = Tensor::zeros(x.shape());
  ln.forward(x.data(), y.data(), rows_of(x));
  ln.backward(input(in, "dy").data(), dx.data());
  out["y"] = y;
  out["dx"] = dx;
  store_grads(ps, out);
}

// weight (out, in), optional bias (meta "bias", default true), x (..., in), dy (..., out).
void linear_case(const nlohmann::json& meta, const Tensors& in, Tensors& out) {
  const Tensor& w = input(in, "weight");
  const Tensor& x = input(in, "x");
  Linear lin(static_cast<int>(w.size(1)), static_cast<int>(w.size(0)), meta.value("bias", true));
  ParamList ps;
  lin.collect_params("", ps);
  load_params(ps, in);
  Shape ys = x.shape();
  ys.back() = w.size(0);
  Tensor y = Tensor::zeros(ys), dx = Tensor::zeros(x.shape());
  lin.forward(x.data(), y.data(), rows_of(x));
  lin.backward(x.data(), input(in, "dy").data(), dx.data(), rows_of(x));
  out["y"] = y;
  out["dx"] = dx;
  store_grads(ps, out);
}

void mlp_case(const nlohmann::json&, const Tensors& in, Tensors& out) {
  const Tensor& x = input(in, "x");
  Mlp mlp(static_cast<int>(x.size(-1)));
  ParamList ps;
  mlp.collect_params("", ps);
  load_params(ps, in);
  Tensor y = Tensor::zeros(x.shape()), dx = Tensor::zeros(x.shape());
  mlp.forward(x.data(), y.data(), rows_of(x));
  mlp.backward(input(in, "dy").data(), dx.data());
  out["y"] = y;
  out["dx"] = dx;
  store_grads(ps, out);
}

// meta: d, heads, rotary_dim (default 0), recurrent, prefill.
void attention_case(const nlohmann::json& meta, const Tensors& in, Tensors& out) {
  Attention att(meta.at("d").get<int>(), meta.at("heads").get<int>(),
                meta.value("rotary_dim", 0));
  run_mixer_case(att, meta, in, out);
  // The plain path too, so the Python test holds it to the reference as well.
  const Tensor& x = input(in, "x");
  Tensor yref = Tensor::zeros(x.shape());
  att.forward_reference(x.data(), yref.data(), static_cast<int>(x.size(0)),
                        static_cast<int>(x.size(1)));
  out["y_reference"] = yref;
}

// x (..., n), dy: y, dx.
void gelu_case(const nlohmann::json&, const Tensors& in, Tensors& out) {
  const Tensor& x = input(in, "x");
  Tensor y = Tensor::zeros(x.shape()), dx = Tensor::zeros(x.shape());
  gelu_forward(x.data(), y.data(), x.numel());
  gelu_backward(x.data(), input(in, "dy").data(), dx.data(), x.numel());
  out["y"] = y;
  out["dx"] = dx;
}

void softmax_case(const nlohmann::json&, const Tensors& in, Tensors& out) {
  const Tensor& x = input(in, "x");
  Tensor y = Tensor::zeros(x.shape()), dx = Tensor::zeros(x.shape());
  softmax_forward(x.data(), y.data(), rows_of(x), x.size(-1));
  softmax_backward(y.data(), input(in, "dy").data(), dx.data(), rows_of(x), x.size(-1));
  out["y"] = y;
  out["dx"] = dx;
}

// logits (rows, V), targets (rows): loss, dlogits, correct, valid.
void cross_entropy_case(const nlohmann::json&, const Tensors& in, Tensors& out) {
  const Tensor& logits = input(in, "logits");
  auto t = as_ids(input(in, "targets"), "targets");
  HIPPO_CHECK(static_cast<int64_t>(t.size()) == rows_of(logits),
              "reference case: targets must have one entry per row of logits");
  Tensor g = Tensor::zeros(logits.shape());
  int64_t correct = 0, valid = 0;
  const double loss = cross_entropy(logits.data(), t.data(), g.data(), rows_of(logits),
                                    logits.size(-1), &correct, &valid);
  out["loss"] = Tensor::zeros({1});
  out["loss"][0] = static_cast<float>(loss);
  out["dlogits"] = g;
  out["correct"] = Tensor::zeros({1});
  out["correct"][0] = static_cast<float>(correct);
  out["valid"] = Tensor::zeros({1});
  out["valid"][0] = static_cast<float>(valid);
}

// weight (V, d), ids (n), dy (n, d): y, grad.weight.
void embedding_case(const nlohmann::json&, const Tensors& in, Tensors& out) {
  const Tensor& E = input(in, "weight");
  auto ids = as_ids(input(in, "ids"), "ids");
  const int64_t n = static_cast<int64_t>(ids.size()), V = E.size(0), d = E.size(1);
  Tensor y = Tensor::zeros({n, d}), g = Tensor::zeros(E.shape());
  embedding_forward(ids.data(), E.data(), y.data(), n, V, d);
  embedding_backward(ids.data(), input(in, "dy").data(), g.data(), n, V, d);
  out["y"] = y;
  out["grad.weight"] = g;
}

}  // namespace

HIPPO_REF_CASE("layernorm", layernorm_case);
HIPPO_REF_CASE("linear", linear_case);
HIPPO_REF_CASE("mlp", mlp_case);
HIPPO_REF_CASE("attention", attention_case);
HIPPO_REF_CASE("gelu", gelu_case);
HIPPO_REF_CASE("softmax", softmax_case);
HIPPO_REF_CASE("cross_entropy", cross_entropy_case);
HIPPO_REF_CASE("embedding", embedding_case);

}  // namespace hippo::ref
