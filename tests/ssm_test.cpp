// SSM kernels and mixers: finite-difference gradients, the FFT convolution against the direct
// one, and recurrent mode against convolution mode. The PyTorch comparisons are in
// tests/ref/test_ssm.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <functional>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "kernels/causal_conv_direct.h"
#include "kernels/fft_conv.h"
#include "nn/h3.h"
#include "nn/s4d_mixer.h"
#include "ssm/s4d.h"
#include "ssm/shift.h"

using namespace hippo;

namespace {

// The finite-difference tests run hundreds of tiny forwards, where OpenMP fork/join on a
// loaded machine costs more than the work; run them on one thread (ThreadedMatchesSerial
// covers the parallel paths).
struct OneThread {
  int saved = num_threads();
  OneThread() { set_num_threads(1); }
  ~OneThread() { set_num_threads(saved); }
};

std::vector<float> randn(Rng& rng, size_t n, double scale = 1.0) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal() * scale);
  return v;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

double max_abs(const float* a, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(a[i])));
  return m;
}

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e = std::max(e, std::fabs(static_cast<double>(a[i]) - b[i]));
  return e / std::max(max_abs(b.data(), b.size()), 1e-30);
}

// Central differences of `loss` wrt up to `count` entries of `v` (random picks), with one
// Richardson step (h, h/2) so that the O(h^2) error of the exponential parameterisations
// (log_dt, inv_A_real) does not mask real mismatches. Compared with `grad` relative to max|grad|.
void check_fd(const char* what, float* v, const float* grad, size_t n,
              const std::function<double()>& loss, Rng& rng, int count = 8, float eps = 1e-2f,
              double tol = 1e-3) {
  const double scale = std::max(max_abs(grad, n), 1e-12);
  double worst = 0;
  for (int k = 0; k < count && k < static_cast<int>(n); ++k) {
    const size_t i = count >= static_cast<int>(n) ? static_cast<size_t>(k) : rng.below(n);
    const float x0 = v[i];
    auto central = [&](float h) {  // uses the steps actually representable in float
      const float xp = x0 + h, xm = x0 - h;
      v[i] = xp;
      const double lp = loss();
      v[i] = xm;
      const double lm = loss();
      v[i] = x0;
      return (lp - lm) / (static_cast<double>(xp) - xm);
    };
    const float h = eps;
    const double fd = (4.0 * central(h / 2) - central(h)) / 3.0;
    worst = std::max(worst, std::fabs(fd - grad[i]) / scale);
  }
  EXPECT_LE(worst, tol) << what << ": finite-difference mismatch";
}

void zero_grads(Module& m) {
  ParamList ps;
  m.collect_params("", ps);
  for (auto& p : ps) p.param->grad.fill(0.0f);
}

// Random but non-degenerate parameters (not the init, so every gradient path is exercised).
void randomize(Module& m, Rng& rng) {
  ParamList ps;
  m.collect_params("", ps);
  for (auto& p : ps) {
    float* v = p.param->value.data();
    const int64_t n = p.param->value.numel();
    const std::string& name = p.name;
    for (int64_t i = 0; i < n; ++i) {
      double x = rng.normal();
      if (name.ends_with("log_dt")) x = std::log(0.01) + 0.8 * x;
      else if (name.ends_with("inv_A_real")) x = std::log(0.5) + 0.3 * x;
      else if (name.ends_with("A_imag")) x = 3.14159 * (i % std::max<int64_t>(1, n / 4)) + 0.2 * x;
      else if (name.ends_with("weight")) x *= 0.4;
      else if (name.ends_with("kernel.kernel.B") && name.find("ssm_k") == std::string::npos)
        x = 1.0 + 0.5 * x;
      v[i] = static_cast<float>(x);
    }
  }
}

// Gradient check of a whole mixer: loss = <w, y>.
void check_mixer_grads(Mixer& m, int B, int L, int d, uint64_t seed) {
  OneThread one;
  Rng rng(seed);
  randomize(m, rng);
  const size_t n = static_cast<size_t>(B) * L * d;
  std::vector<float> x = randn(rng, n), w = randn(rng, n), y(n), dx(n);
  zero_grads(m);
  m.forward(x.data(), y.data(), B, L);
  m.backward(w.data(), dx.data());
  auto loss = [&] {
    std::vector<float> yy(n);
    m.forward(x.data(), yy.data(), B, L);
    return dot(w, yy);
  };
  // fp32 forward noise (~1e-7 relative per output, through FFTs) limits how small the step can
  // be and how well small gradients (inv_A_real) resolve: step 1e-1 with Richardson, tol 5e-3.
  // The tight (1e-4) gradient comparison is tests/ref/test_ssm.py against float64 PyTorch.
  check_fd("dx", x.data(), dx.data(), n, loss, rng, 12, 1e-1f, 5e-3);
  ParamList ps;
  m.collect_params("", ps);
  for (auto& p : ps)
    check_fd(p.name.c_str(), p.param->value.data(), p.param->grad.data(),
             static_cast<size_t>(p.param->value.numel()), loss, rng, 8, 1e-1f, 5e-3);
}

// Recurrent mode vs convolution mode: token-by-token steps, and prefill + steps.
void check_recurrent(Mixer& m, int B, int L, int d, int P, uint64_t seed, double tol = 1e-5) {
  OneThread one;
  Rng rng(seed);
  randomize(m, rng);
  const size_t n = static_cast<size_t>(B) * L * d;
  std::vector<float> x = randn(rng, n), y(n), ys(n), yps(n);
  m.forward(x.data(), y.data(), B, L);
  std::vector<float> xt(static_cast<size_t>(B) * d), yt(xt.size());
  auto run_steps = [&](MixerState& st, int from, std::vector<float>& out) {
    for (int t = from; t < L; ++t) {
      for (int b = 0; b < B; ++b)
        std::copy_n(&x[(static_cast<size_t>(b) * L + t) * d], d, &xt[static_cast<size_t>(b) * d]);
      m.step(xt.data(), yt.data(), st);
      for (int b = 0; b < B; ++b)
        std::copy_n(&yt[static_cast<size_t>(b) * d], d, &out[(static_cast<size_t>(b) * L + t) * d]);
    }
  };
  auto st = m.new_state(B);
  run_steps(*st, 0, ys);
  EXPECT_LE(rel_err(ys, y), tol) << "step vs convolution";
  // Prefill P tokens (the prompt's own output must match too), then step.
  std::vector<float> xp(static_cast<size_t>(B) * P * d), yp(xp.size());
  for (int b = 0; b < B; ++b)
    std::copy_n(x.data() + static_cast<size_t>(b) * L * d, static_cast<size_t>(P) * d,
                xp.data() + static_cast<size_t>(b) * P * d);  // P may be 0: no &v[0] of empty
  auto st2 = m.new_state(B);
  m.prefill(xp.data(), yp.data(), B, P, *st2);
  for (int b = 0; b < B; ++b)
    std::copy_n(yp.data() + static_cast<size_t>(b) * P * d, static_cast<size_t>(P) * d,
                yps.data() + static_cast<size_t>(b) * L * d);
  run_steps(*st2, P, yps);
  EXPECT_LE(rel_err(yps, y), tol) << "prefill + step vs convolution";
}

}  // namespace

// ---------------------------------------------------------------- convolutions

TEST(SsmConv, FftEqualsDirect) {
  Rng rng(1);
  for (int L : {1, 7, 100, 256}) {
    const int B = 2, H = 3;
    const size_t n = static_cast<size_t>(B) * H * L;
    std::vector<float> u = randn(rng, n), K = randn(rng, static_cast<size_t>(H) * L),
                       dy = randn(rng, n);
    std::vector<float> y1(n), y2(n), du1(n), du2(n), dK1(K.size(), 0.5f), dK2(K.size(), 0.5f);
    fft_causal_conv(u.data(), K.data(), y1.data(), B, H, L);
    causal_conv_direct(u.data(), K.data(), y2.data(), B, H, L, L);
    EXPECT_LE(rel_err(y1, y2), 1e-5) << "L=" << L;
    fft_causal_conv_backward(u.data(), K.data(), dy.data(), du1.data(), dK1.data(), B, H, L);
    causal_conv_direct_backward(u.data(), K.data(), dy.data(), du2.data(), dK2.data(), B, H, L, L);
    EXPECT_LE(rel_err(du1, du2), 1e-5) << "L=" << L;
    EXPECT_LE(rel_err(dK1, dK2), 1e-5) << "L=" << L;  // both added to the same 0.5
  }
}

TEST(SsmConv, DirectGradients) {
  Rng rng(2);
  const int B = 2, H = 3, L = 20, N = 8;
  const size_t n = static_cast<size_t>(B) * H * L;
  std::vector<float> u = randn(rng, n), K = randn(rng, static_cast<size_t>(H) * N),
                     w = randn(rng, n), du(n), dK(K.size(), 0.0f), y(n);
  causal_conv_direct_backward(u.data(), K.data(), w.data(), du.data(), dK.data(), B, H, L, N);
  auto loss = [&] {
    causal_conv_direct(u.data(), K.data(), y.data(), B, H, L, N);
    return dot(w, y);
  };
  check_fd("du", u.data(), du.data(), n, loss, rng, 20);
  check_fd("dK", K.data(), dK.data(), K.size(), loss, rng, 24);
}

TEST(SsmConv, FftGradients) {
  Rng rng(3);
  const int B = 2, H = 3, L = 33;
  const size_t n = static_cast<size_t>(B) * H * L;
  std::vector<float> u = randn(rng, n), K = randn(rng, static_cast<size_t>(H) * L),
                     w = randn(rng, n), du(n), dK(K.size(), 0.0f), y(n);
  fft_causal_conv_backward(u.data(), K.data(), w.data(), du.data(), dK.data(), B, H, L);
  auto loss = [&] {
    fft_causal_conv(u.data(), K.data(), y.data(), B, H, L);
    return dot(w, y);
  };
  check_fd("du", u.data(), du.data(), n, loss, rng, 20);
  check_fd("dK", K.data(), dK.data(), K.size(), loss, rng, 20);
}

TEST(SsmConv, RejectsBadShapes) {
  float x = 0;
  EXPECT_THROW(causal_conv_direct(&x, &x, &x, 1, 1, 1, 0), Error);
  EXPECT_THROW(fft_causal_conv(&x, &x, &x, -1, 1, 1), Error);
}

// ---------------------------------------------------------------- SSM kernels

class S4DKernelGrad : public ::testing::TestWithParam<Discretization> {};

TEST_P(S4DKernelGrad, EveryParameter) {
  Rng rng(4);
  const int H = 3, N = 8, L = 40;
  S4DKernel k(H, N, GetParam());
  randomize(k, rng);
  std::vector<float> K(static_cast<size_t>(H) * L), w = randn(rng, K.size());
  k.kernel(K.data(), L);
  k.kernel_backward(w.data(), L);
  auto loss = [&] {
    k.kernel(K.data(), L);
    return dot(w, K);
  };
  ParamList ps;
  k.collect_params("", ps);
  ASSERT_EQ(ps.size(), 5u);
  for (auto& p : ps)
    check_fd(p.name.c_str(), p.param->value.data(), p.param->grad.data(),
             static_cast<size_t>(p.param->value.numel()), loss, rng, 12);
}

INSTANTIATE_TEST_SUITE_P(Ssm, S4DKernelGrad,
                         ::testing::Values(Discretization::Bilinear, Discretization::ZOH));

TEST(S4D, KernelMatchesRecurrence) {
  Rng rng(5);
  for (auto disc : {Discretization::Bilinear, Discretization::ZOH}) {
    const int H = 2, N = 16, L = 50;
    S4DKernel k(H, N, disc);
    k.init(rng, S4DInit::Inv);
    std::vector<float> K(static_cast<size_t>(H) * L);
    k.kernel(K.data(), L);
    // Impulse response of the recurrence is the kernel.
    for (int h = 0; h < H; ++h) {
      std::vector<std::complex<float>> x(k.M());
      std::vector<float> rec(L), ker(K.begin() + h * L, K.begin() + (h + 1) * L);
      for (int t = 0; t < L; ++t) rec[t] = k.step(h, x.data(), t == 0 ? 1.0f : 0.0f);
      EXPECT_LE(rel_err(rec, ker), 1e-5);
    }
  }
}

TEST(S4D, PromptStateThenStepEqualsConvolution) {
  Rng rng(6);
  const int H = 2, N = 16, L = 60, P = 23;
  S4DKernel k(H, N);
  k.init(rng);
  std::vector<float> K(static_cast<size_t>(H) * L), u = randn(rng, static_cast<size_t>(H) * L),
                     y(u.size());
  k.kernel(K.data(), L);
  fft_causal_conv(u.data(), K.data(), y.data(), 1, H, L);
  for (int h = 0; h < H; ++h) {
    std::vector<std::complex<float>> x(k.M());
    k.prompt_state(h, u.data() + h * L, P, x.data());
    std::vector<float> got, want;
    for (int t = P; t < L; ++t) {
      got.push_back(k.step(h, x.data(), u[h * L + t]));
      want.push_back(y[h * L + t]);
    }
    EXPECT_LE(rel_err(got, want), 1e-5);
    // Advancing over the rest from the prompt state ends where the whole sequence ends.
    std::vector<std::complex<float>> xa(k.M()), xw(k.M());
    k.prompt_state(h, u.data() + h * L, P, xa.data());
    k.advance_state(h, u.data() + h * L + P, L - P, xa.data());
    k.prompt_state(h, u.data() + h * L, L, xw.data());
    for (int m = 0; m < k.M(); ++m) EXPECT_LE(std::abs(xa[m] - xw[m]), 1e-5 * (1 + std::abs(xw[m])));
  }
}

TEST(S4D, InitAndShapes) {
  Rng rng(7);
  S4DKernel k(4, 64);
  k.init(rng, S4DInit::Lin);
  EXPECT_EQ(k.M(), 32);
  EXPECT_EQ(k.B.value.shape(), (Shape{4, 32, 2}));
  EXPECT_EQ(k.C.value.shape(), (Shape{1, 4, 32, 2}));
  EXPECT_NEAR(k.A_imag.value[5], 3.14159265f * 5, 1e-4);
  EXPECT_NEAR(k.inv_A_real.value[0], std::log(0.5f), 1e-6);
  for (int h = 0; h < 4; ++h) {
    EXPECT_GE(k.log_dt.value[h], std::log(0.001f) - 1e-5);
    EXPECT_LE(k.log_dt.value[h], std::log(0.1f) + 1e-5);
  }
  k.init(rng, S4DInit::Inv);
  EXPECT_NEAR(k.A_imag.value[1], 64 / 3.14159265 * (64 / 3.0 - 1), 1e-2);
  EXPECT_EQ(k.log_dt.kind, ParamKind::SsmDynamics);
  EXPECT_EQ(k.C.kind, ParamKind::Decay);
  EXPECT_THROW(S4DKernel(4, 7), Error);
}

TEST(Shift, KernelGradients) {
  Rng rng(8);
  const int H = 3, N = 10;
  ShiftKernel k(H, N);
  randomize(k, rng);
  std::vector<float> K(static_cast<size_t>(H) * N), w = randn(rng, K.size());
  k.kernel_backward(w.data());
  auto loss = [&] {
    k.kernel(K.data());
    return dot(w, K);
  };
  check_fd("B", k.B.value.data(), k.B.grad.data(), K.size(), loss, rng, 30);
  check_fd("C", k.C.value.data(), k.C.grad.data(), K.size(), loss, rng, 30);
}

TEST(Shift, StepAndPromptStateEqualConvolution) {
  Rng rng(9);
  const int H = 2, N = 8, L = 30, P = 11;
  ShiftKernel k(H, N);
  randomize(k, rng);
  std::vector<float> K(static_cast<size_t>(H) * N), u = randn(rng, static_cast<size_t>(H) * L),
                     y(u.size());
  k.kernel(K.data());
  causal_conv_direct(u.data(), K.data(), y.data(), 1, H, L, N);
  for (int h = 0; h < H; ++h) {
    std::vector<float> s(N, 0.0f), s2(N), got, got2, want(y.begin() + h * L, y.begin() + (h + 1) * L);
    for (int t = 0; t < L; ++t) got.push_back(k.step(h, s.data(), u[h * L + t]));
    EXPECT_LE(rel_err(got, want), 1e-6);
    k.prompt_state(h, u.data() + h * L, P, s2.data());
    for (int t = P; t < L; ++t) got2.push_back(k.step(h, s2.data(), u[h * L + t]));
    EXPECT_LE(rel_err(got2, std::vector<float>(want.begin() + P, want.end())), 1e-6);
  }
}

// ---------------------------------------------------------------- mixers

TEST(H3Layer, Gradients) {
  H3 m(8, 8, 1);
  check_mixer_grads(m, 2, 12, 8, 10);
}

TEST(H3Layer, GradientsMultiHead) {
  H3 m(8, 8, 2);
  check_mixer_grads(m, 2, 12, 8, 11);
}

TEST(H3Layer, GradientsZoh) {
  H3 m(6, 4, 1, true, true, Discretization::ZOH);
  check_mixer_grads(m, 2, 9, 6, 12);
}

TEST(H3Layer, GradientsWithoutShift) {
  H3 m(8, 8, 2, false, true);
  check_mixer_grads(m, 2, 12, 8, 13);
}

TEST(H3Layer, GradientsWithoutDiag) {
  H3 m(8, 8, 2, true, false);
  check_mixer_grads(m, 2, 12, 8, 14);
}

TEST(H3Layer, RecurrentEqualsConvolution) {
  for (int p : {1, 2, 4}) {
    H3 m(16, 8, p);
    check_recurrent(m, 2, 30, 16, 13, 20 + p);
  }
  H3 no_shift(16, 8, 2, false, true), no_diag(16, 8, 2, true, false);
  check_recurrent(no_shift, 2, 30, 16, 5, 30);
  check_recurrent(no_diag, 2, 30, 16, 5, 31);
  H3 m(16, 16, 1);
  check_recurrent(m, 1, 9, 16, 0, 32);  // empty prompt
}

TEST(H3Layer, ParamNamesKindsAndInit) {
  H3 m(8, 4, 2);
  ParamList ps;
  m.collect_params("mixer.", ps);
  std::vector<std::string> names;
  for (auto& p : ps) names.push_back(p.name);
  const std::vector<std::string> want = {
      "mixer.q_proj.weight", "mixer.q_proj.bias", "mixer.k_proj.weight", "mixer.k_proj.bias",
      "mixer.v_proj.weight", "mixer.v_proj.bias", "mixer.output_linear.weight",
      "mixer.output_linear.bias", "mixer.ssm_k_kernel.kernel.B", "mixer.ssm_k_kernel.kernel.C",
      "mixer.ssm_k_D", "mixer.kernel.kernel.log_dt", "mixer.kernel.kernel.inv_A_real",
      "mixer.kernel.kernel.A_imag", "mixer.kernel.kernel.B", "mixer.kernel.kernel.C", "mixer.D"};
  EXPECT_EQ(names, want);
  EXPECT_EQ(m.shift_->B.value.shape(), (Shape{8, 4}));
  EXPECT_EQ(m.shift_->C.value.shape(), (Shape{1, 8, 4}));
  EXPECT_EQ(m.diag_->log_dt.value.shape(), (Shape{4}));
  EXPECT_EQ(m.diag_->B.value.shape(), (Shape{4, 2, 2}));
  EXPECT_EQ(m.D.value.shape(), (Shape{4}));
  EXPECT_EQ(m.shift_->B.kind, ParamKind::SsmDynamics);
  EXPECT_EQ(m.shift_->C.kind, ParamKind::Decay);
  EXPECT_EQ(m.ssm_k_D.kind, ParamKind::NoDecay);
  EXPECT_EQ(m.D.kind, ParamKind::NoDecay);
  Rng rng(40);
  m.init(rng, 2);
  EXPECT_EQ(m.shift_->B.value[0], 1.0f);
  EXPECT_EQ(m.shift_->B.value[1], 0.0f);
  EXPECT_LE(max_abs(m.shift_->C.value.data(), 32), 0.5 + 1e-6);
  EXPECT_EQ(m.q_proj.bias.value[3], 0.0f);

  H3 ns(8, 4, 1, false, true), nd(8, 4, 1, true, false);
  ParamList a, b;
  ns.collect_params("", a);
  nd.collect_params("", b);
  EXPECT_EQ(a.size(), 8u + 6u);
  EXPECT_EQ(b.size(), 8u + 3u);
  EXPECT_THROW(H3(8, 4, 3), Error);
  EXPECT_THROW(H3(8, 5, 1), Error);
  EXPECT_NO_THROW(H3(8, 5, 1, true, false));  // odd N is fine for the shift SSM alone
}

TEST(S4DMixerLayer, Gradients) {
  S4DMixer m(6, 8);
  check_mixer_grads(m, 2, 11, 6, 50);
}

TEST(S4DMixerLayer, RecurrentEqualsConvolution) {
  S4DMixer m(8, 16);
  check_recurrent(m, 2, 25, 8, 10, 51);
  S4DMixer z(8, 8, Discretization::ZOH);
  check_recurrent(z, 1, 25, 8, 24, 52);
}

// Large enough that every loop takes its OpenMP path: results must not depend on threads.
TEST(H3Layer, ThreadedMatchesSerial) {
  const int B = 2, L = 256, d = 64;
  const size_t n = static_cast<size_t>(B) * L * d;
  for (int p : {1, 2}) {
    H3 m(d, 64, p);
    Rng rng(60 + p);
    m.init(rng, 2);
    std::vector<float> x = randn(rng, n), w = randn(rng, n);
    auto run = [&](int threads, std::vector<float>& y, std::vector<float>& dx,
                   std::vector<float>& grads) {
      const int saved = num_threads();
      set_num_threads(threads);
      zero_grads(m);
      m.forward(x.data(), y.data(), B, L);
      m.backward(w.data(), dx.data());
      ParamList ps;
      m.collect_params("", ps);
      grads.clear();
      for (auto& q : ps)
        grads.insert(grads.end(), q.param->grad.data(), q.param->grad.data() + q.param->grad.numel());
      set_num_threads(saved);
    };
    std::vector<float> y1(n), dx1(n), g1, y2(n), dx2(n), g2;
    run(1, y1, dx1, g1);
    run(2, y2, dx2, g2);
    EXPECT_LE(rel_err(y2, y1), 1e-6);
    EXPECT_LE(rel_err(dx2, dx1), 1e-6);
    EXPECT_LE(rel_err(g2, g1), 1e-6);
  }
}

// The FlashConv path (default) and the plain FFTW reference path give the same layer.
TEST(FastPath, FlashConvEqualsReferenceConvInH3AndS4D) {
  for (int p : {1, 2}) {
    for (int kind = 0; kind < 2; ++kind) {
      const int d = 16, B = 2, L = 77;
      std::unique_ptr<Mixer> fast, ref;
      if (kind == 0) {
        auto a = std::make_unique<H3>(d, 16, p), b = std::make_unique<H3>(d, 16, p);
        b->reference_conv = true;
        fast = std::move(a);
        ref = std::move(b);
      } else {
        if (p != 1) continue;
        auto a = std::make_unique<S4DMixer>(d, 16), b = std::make_unique<S4DMixer>(d, 16);
        b->reference_conv = true;
        fast = std::move(a);
        ref = std::move(b);
      }
      Rng r1(5), r2(5);
      fast->init(r1, 2, 0.3f);
      ref->init(r2, 2, 0.3f);
      std::vector<float> x(B * L * d), dy(B * L * d), y1(x.size()), y2(x.size()), dx1(x.size()), dx2(x.size());
      Rng rx(9);
      for (auto& v : x) v = static_cast<float>(rx.normal());
      for (auto& v : dy) v = static_cast<float>(rx.normal());
      fast->forward(x.data(), y1.data(), B, L);
      ref->forward(x.data(), y2.data(), B, L);
      fast->backward(dy.data(), dx1.data());
      ref->backward(dy.data(), dx2.data());
      auto rel = [](const float* a, const float* b, size_t n) {
        double num = 0, den = 1e-30;
        for (size_t i = 0; i < n; ++i) {
          num = std::max(num, static_cast<double>(std::abs(a[i] - b[i])));
          den = std::max(den, static_cast<double>(std::abs(b[i])));
        }
        return num / den;
      };
      EXPECT_LT(rel(y1.data(), y2.data(), y1.size()), 1e-5) << "kind " << kind << " p " << p;
      EXPECT_LT(rel(dx1.data(), dx2.data(), dx1.size()), 1e-5) << "kind " << kind << " p " << p;
      ParamList pa, pb;
      fast->collect_params("", pa);
      ref->collect_params("", pb);
      for (size_t i = 0; i < pa.size(); ++i)
        EXPECT_LT(rel(pa[i].param->grad.data(), pb[i].param->grad.data(), pa[i].param->grad.numel()), 1e-5)
            << pa[i].name;
    }
  }
}
