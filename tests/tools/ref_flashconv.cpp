// Reference cases for FlashConv (tests/ref/test_flashconv.py).
//   "flashconv"     meta {"op": "conv"|"h3", "isa": "auto"|"scalar"|"avx2"|"avx512"}
//                   in: u (conv) or q, k, v (h3), K (H, L), D (H), dy; all (B, H, L)
//                   out: y, du (conv) or dq, dk, dv (h3), dK, dD
//   "flashconv_ssm" meta {"T": chunk}; in: u, dA_re, dA_im, CB_re, CB_im (H, M), D, and
//                   optionally dy; out: y, and with dy: du, dD, grad.{dA,CB}_{re,im}
#include <string>

#include "kernels/flashconv/flashconv.h"
#include "tools/ref_case.h"

namespace hippo::ref {

namespace {

// Caps the kernels at the case's instruction-set level ("auto": no cap).
void use_isa(const std::string& s) {
  if (s == "auto") return clear_isa_override();
  const std::optional<Isa> level = parse_isa(s);
  HIPPO_CHECK(level.has_value(), "flashconv case: unknown isa '", s, "'");
  HIPPO_CHECK(*level <= detected_isa(), "flashconv case: this CPU does not support ", s);
  set_isa_override(*level);
}

void flashconv_case(const nlohmann::json& meta, const Tensors& in, Tensors& out) {
  const std::string op = meta.value("op", "conv");
  use_isa(meta.value("isa", "auto"));
  const Tensor& K = input(in, "K");
  const Tensor& D = input(in, "D");
  const Tensor& dy = input(in, "dy");
  HIPPO_CHECK(dy.dim() == 3, "flashconv case: dy must be (B, H, L)");
  int B = static_cast<int>(dy.size(0)), H = static_cast<int>(dy.size(1)),
      L = static_cast<int>(dy.size(2));
  HIPPO_CHECK(K.numel() == static_cast<int64_t>(H) * L && D.numel() == H,
              "flashconv case: K must be (H, L) and D (H)");
  Tensor y = Tensor::zeros(dy.shape()), dK = Tensor::zeros(K.shape()), dD = Tensor::zeros(D.shape());
  if (op == "conv") {
    const Tensor& u = input(in, "u");
    Tensor du = Tensor::zeros(dy.shape());
    flashconv_fwd(u.data(), K.data(), D.data(), y.data(), B, H, L);
    flashconv_bwd(u.data(), K.data(), D.data(), dy.data(), du.data(), dK.data(), dD.data(), B, H, L);
    out["du"] = du;
  } else {
    HIPPO_CHECK(op == "h3", "flashconv case: unknown op '", op, "'");
    const Tensor &q = input(in, "q"), &k = input(in, "k"), &v = input(in, "v");
    Tensor dq = Tensor::zeros(dy.shape()), dk = Tensor::zeros(dy.shape()),
           dv = Tensor::zeros(dy.shape());
    flashconv_h3_fwd(q.data(), k.data(), v.data(), K.data(), D.data(), y.data(), B, H, L);
    flashconv_h3_bwd(q.data(), k.data(), v.data(), K.data(), D.data(), dy.data(), dq.data(),
                     dk.data(), dv.data(), dK.data(), dD.data(), B, H, L);
    out["dq"] = dq, out["dk"] = dk, out["dv"] = dv;
  }
  out["y"] = y, out["dK"] = dK, out["dD"] = dD;
  clear_isa_override();
}

void flashconv_ssm_case(const nlohmann::json& meta, const Tensors& in, Tensors& out) {
  const Tensor& u = input(in, "u");
  const Tensor& dAr = input(in, "dA_re");
  HIPPO_CHECK(u.dim() == 3 && dAr.dim() == 2, "flashconv_ssm case: u (B, H, L), dA_re (H, M)");
  int B = static_cast<int>(u.size(0)), H = static_cast<int>(u.size(1)),
      L = static_cast<int>(u.size(2));
  DiagSsmDiscrete ssm{dAr.data(), input(in, "dA_im").data(), input(in, "CB_re").data(),
                      input(in, "CB_im").data(), static_cast<int>(dAr.size(1))};
  const int T = meta.value("T", 64);
  Tensor y = Tensor::zeros(u.shape());
  flashconv_ssm_fwd(u.data(), ssm, input(in, "D").data(), y.data(), B, H, L, T);
  out["y"] = y;
  if (in.count("dy")) {
    Tensor du = Tensor::zeros(u.shape()), dD = Tensor::zeros({H});
    Tensor gAr = Tensor::zeros(dAr.shape()), gAi = Tensor::zeros(dAr.shape()),
           gCr = Tensor::zeros(dAr.shape()), gCi = Tensor::zeros(dAr.shape());
    DiagSsmDiscreteGrad g{gAr.data(), gAi.data(), gCr.data(), gCi.data()};
    flashconv_ssm_bwd(u.data(), ssm, input(in, "D").data(), input(in, "dy").data(), du.data(),
                      dD.data(), g, B, H, L, T);
    out["du"] = du, out["dD"] = dD;
    out["grad.dA_re"] = gAr, out["grad.dA_im"] = gAi, out["grad.CB_re"] = gCr, out["grad.CB_im"] = gCi;
  }
}

}  // namespace

HIPPO_REF_CASE("flashconv", flashconv_case);
HIPPO_REF_CASE("flashconv_ssm", flashconv_ssm_case);

}  // namespace hippo::ref
