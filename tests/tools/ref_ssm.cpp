// Reference cases for the SSM kernels and the SSM mixers (tests/ref/test_ssm.py).
#include <string>

#include "kernels/causal_conv_direct.h"
#include "kernels/fft_conv.h"
#include "nn/h3.h"
#include "nn/s4d_mixer.h"
#include "ssm/s4d.h"
#include "ssm/shift.h"
#include "tools/ref_case.h"

namespace hippo::ref {
namespace {

Discretization disc_of(const nlohmann::json& meta) {
  const std::string s = meta.value("disc", std::string("bilinear"));
  HIPPO_CHECK(s == "bilinear" || s == "zoh", "meta.disc must be 'bilinear' or 'zoh', got '", s,
              "'");
  return s == "zoh" ? Discretization::ZOH : Discretization::Bilinear;
}

// Inputs: kernel.kernel.{log_dt,...} params and "dK" (H, L). Outputs "K", "dA", "dB" (H, M, 2)
// and "grad.<param>". meta: {H, N, L, disc}.
void s4d_kernel_case(const nlohmann::json& meta, const Tensors& in, Tensors& out) {
  const int H = meta.at("H"), N = meta.at("N"), L = meta.at("L");
  S4DKernel k(H, N, disc_of(meta));
  ParamList params;
  k.collect_params("kernel.kernel.", params);
  load_params(params, in);
  Tensor K = Tensor::zeros({H, L});
  k.kernel(K.data(), L);
  const Tensor& dK = input(in, "dK");
  HIPPO_CHECK(dK.numel() == static_cast<int64_t>(H) * L, "dK must be (H, L)");
  k.kernel_backward(dK.data(), L);
  const int M = k.M();
  Tensor dA = Tensor::zeros({H, M, 2}), dB = Tensor::zeros({H, M, 2});
  for (int h = 0; h < H; ++h)
    for (int m = 0; m < M; ++m) {
      const int64_t i = static_cast<int64_t>(h) * M + m;
      dA[2 * i] = static_cast<float>(k.dA(h)[m].real());
      dA[2 * i + 1] = static_cast<float>(k.dA(h)[m].imag());
      dB[2 * i] = static_cast<float>(k.dB(h)[m].real());
      dB[2 * i + 1] = static_cast<float>(k.dB(h)[m].imag());
    }
  out["K"] = K;
  out["dA"] = dA;
  out["dB"] = dB;
  store_grads(params, out);
}

// Inputs ssm_k_kernel.kernel.{B,C}, "dK" (H, N). Outputs "K", grads. meta {H, N}.
void shift_kernel_case(const nlohmann::json& meta, const Tensors& in, Tensors& out) {
  const int H = meta.at("H"), N = meta.at("N");
  ShiftKernel k(H, N);
  ParamList params;
  k.collect_params("ssm_k_kernel.kernel.", params);
  load_params(params, in);
  Tensor K = Tensor::zeros({H, N});
  k.kernel(K.data());
  const Tensor& dK = input(in, "dK");
  HIPPO_CHECK(dK.numel() == static_cast<int64_t>(H) * N, "dK must be (H, N)");
  k.kernel_backward(dK.data());
  out["K"] = K;
  store_grads(params, out);
}

// Inputs "u" (B, H, L), "K" (H, N or L), "dy" (B, H, L). Outputs "y", "du", "dK".
void conv_case(bool fft, const Tensors& in, Tensors& out) {
  const Tensor& u = input(in, "u");
  const Tensor& K = input(in, "K");
  const Tensor& dy = input(in, "dy");
  HIPPO_CHECK(u.dim() == 3 && K.dim() == 2 && dy.shape() == u.shape(),
              "conv case: u, dy must be (B, H, L) and K (H, N)");
  const int B = static_cast<int>(u.size(0)), H = static_cast<int>(u.size(1)),
            L = static_cast<int>(u.size(2)), N = static_cast<int>(K.size(1));
  HIPPO_CHECK(K.size(0) == H && (!fft || N == L), "conv case: K has the wrong shape");
  Tensor y = Tensor::zeros(u.shape()), du = Tensor::zeros(u.shape()), dK = Tensor::zeros(K.shape());
  if (fft) {
    fft_causal_conv(u.data(), K.data(), y.data(), B, H, L);
    fft_causal_conv_backward(u.data(), K.data(), dy.data(), du.data(), dK.data(), B, H, L);
  } else {
    causal_conv_direct(u.data(), K.data(), y.data(), B, H, L, N);
    causal_conv_direct_backward(u.data(), K.data(), dy.data(), du.data(), dK.data(), B, H, L, N);
  }
  out["y"] = y;
  out["du"] = du;
  out["dK"] = dK;
}

void h3_case(const nlohmann::json& meta, const Tensors& in, Tensors& out) {
  H3 m(meta.at("d"), meta.value("d_state", 64), meta.value("head_dim", 1),
       meta.value("use_shift", true), meta.value("use_diag", true), disc_of(meta));
  run_mixer_case(m, meta, in, out);
}

void s4d_mixer_case(const nlohmann::json& meta, const Tensors& in, Tensors& out) {
  S4DMixer m(meta.at("d"), meta.value("d_state", 64), disc_of(meta));
  run_mixer_case(m, meta, in, out);
}

}  // namespace

HIPPO_REF_CASE("s4d_kernel", s4d_kernel_case);
HIPPO_REF_CASE("shift_kernel", shift_kernel_case);
HIPPO_REF_CASE("fft_conv", [](const nlohmann::json&, const Tensors& in, Tensors& out) {
  conv_case(true, in, out);
});
HIPPO_REF_CASE("conv_direct", [](const nlohmann::json&, const Tensors& in, Tensors& out) {
  conv_case(false, in, out);
});
HIPPO_REF_CASE("h3", h3_case);
HIPPO_REF_CASE("s4d_mixer", s4d_mixer_case);

}  // namespace hippo::ref
