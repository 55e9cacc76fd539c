// Dense kernels and layers: forward against double-precision references written here from the
// spec, backward against central finite differences, and the error cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/softmax.h"
#include "kernels/vec_math.h"
#include "nn/attention.h"
#include "nn/layernorm.h"
#include "nn/linear.h"
#include "nn/mlp.h"

using namespace hippo;

namespace {

std::vector<float> randn(size_t n, Rng& rng, double scale = 1.0, double shift = 0.0) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(shift + scale * rng.normal());
  return v;
}

void fill_randn(Param& p, Rng& rng, double scale) {
  for (int64_t i = 0; i < p.value.numel(); ++i)
    p.value[i] = static_cast<float>(scale * rng.normal());
}

double weighted_sum(const float* y, const float* w, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(y[i]) * w[i];
  return s;
}

// Largest |a - b| over max |b|.
double rel_err(const float* a, const double* b, size_t n) {
  double e = 0, m = 1e-30;
  for (size_t i = 0; i < n; ++i) {
    e = std::max(e, std::abs(a[i] - b[i]));
    m = std::max(m, std::abs(b[i]));
  }
  return e / m;
}
double rel_err(const float* a, const float* b, size_t n) {
  std::vector<double> bd(b, b + n);
  return rel_err(a, bd.data(), n);
}

// Central differences of loss() w.r.t. p[i] on a sample of indices (always the first and the
// last), against the analytic g. Returns max |fd - g| over the sample / max |g| over all of g.
// The step actually taken in float is used, not the nominal h.
double fd_error(const std::function<double()>& loss, float* p, const float* g, size_t n,
                Rng& rng, float h = 1e-2f, int samples = 24) {
  std::vector<size_t> idx = {0, n - 1};
  for (int s = 0; s < samples && n > 2; ++s) idx.push_back(rng.below(n));
  if (n <= static_cast<size_t>(samples)) {
    idx.clear();
    for (size_t i = 0; i < n; ++i) idx.push_back(i);
  }
  double gmax = 1e-30, err = 0;
  for (size_t i = 0; i < n; ++i) gmax = std::max(gmax, std::abs(static_cast<double>(g[i])));
  for (size_t i : idx) {
    const float orig = p[i];
    p[i] = orig + h;
    const double xp = p[i], lp = loss();
    p[i] = orig - h;
    const double xm = p[i], lm = loss();
    p[i] = orig;
    err = std::max(err, std::abs((lp - lm) / (xp - xm) - g[i]));
  }
  if (std::getenv("HIPPO_TEST_VERBOSE")) std::printf("  fd rel err %.2e\n", err / gmax);
  return err / gmax;
}

std::string error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// ---------------------------------------------------------------- kernels

TEST(VecMath, ExpAndTanhMatchStd) {
  double exp_err = 0, tanh_err = 0;
  for (int i = -1000000; i <= 1000000; ++i) {
    const float x = i * 8.83e-5f;  // [-88.3, 88.3]
    const double ref = std::exp(static_cast<double>(x));
    if (x >= -87.3f) exp_err = std::max(exp_err, std::abs(exp_fast(x) - ref) / ref);
    const float u = i * 3e-5f;  // [-30, 30]
    tanh_err = std::max(tanh_err, std::abs(tanh_fast(u) - std::tanh(static_cast<double>(u))));
  }
  if (std::getenv("HIPPO_TEST_VERBOSE"))
    std::printf("  exp rel err %.2e, tanh abs err %.2e\n", exp_err, tanh_err);
  EXPECT_LT(exp_err, 2e-7);
  EXPECT_LT(tanh_err, 3e-7);
  EXPECT_EQ(exp_fast(-87.4f), 0.0f);
  EXPECT_EQ(exp_fast(-1e30f), 0.0f);
  EXPECT_EQ(exp_fast(0.0f), 1.0f);
  EXPECT_GT(exp_fast(1e30f), 1e38f);
  EXPECT_EQ(tanh_fast(100.0f), 1.0f);
  EXPECT_EQ(tanh_fast(-100.0f), -1.0f);
}

TEST(LayerNormKernel, MatchesDoubleReferenceAndFiniteDifferences) {
  Rng rng(1);
  const int64_t rows = 7, d = 48;
  auto x = randn(rows * d, rng, 2.0, 30.0);  // a large mean: the variance must not cancel
  auto gamma = randn(d, rng, 0.5, 1.0), beta = randn(d, rng), dy = randn(rows * d, rng);
  std::vector<float> y(rows * d), mean(rows), rstd(rows);
  layernorm_forward(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), rows,
                    d);
  std::vector<double> ref(rows * d);
  for (int64_t r = 0; r < rows; ++r) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < d; ++j) mu += x[r * d + j];
    mu /= d;
    for (int64_t j = 0; j < d; ++j) var += (x[r * d + j] - mu) * (x[r * d + j] - mu);
    var /= d;
    for (int64_t j = 0; j < d; ++j)
      ref[r * d + j] = (x[r * d + j] - mu) / std::sqrt(var + 1e-5) * gamma[j] + beta[j];
  }
  EXPECT_LT(rel_err(y.data(), ref.data(), y.size()), 1e-5);

  std::vector<float> dx(rows * d), dg(d, 0.0f), db(d, 0.0f);
  layernorm_backward(dy.data(), x.data(), gamma.data(), mean.data(), rstd.data(), dx.data(),
                     dg.data(), db.data(), rows, d);
  auto loss = [&] {
    std::vector<float> yy(rows * d), m(rows), s(rows);
    layernorm_forward(x.data(), gamma.data(), beta.data(), yy.data(), m.data(), s.data(), rows, d);
    return weighted_sum(yy.data(), dy.data(), yy.size());
  };
  EXPECT_LT(fd_error(loss, x.data(), dx.data(), x.size(), rng, 2e-2f), 1e-3);
  EXPECT_LT(fd_error(loss, gamma.data(), dg.data(), d, rng), 1e-3);
  EXPECT_LT(fd_error(loss, beta.data(), db.data(), d, rng), 1e-3);

  // dgamma/dbeta accumulate; dx may alias dy.
  std::vector<float> dg2 = dg, db2 = db, inplace = dy;
  layernorm_backward(inplace.data(), x.data(), gamma.data(), mean.data(), rstd.data(),
                     inplace.data(), dg2.data(), db2.data(), rows, d);
  for (int64_t j = 0; j < d; ++j) {
    EXPECT_NEAR(dg2[j], 2 * dg[j], 1e-4 * (1 + std::abs(dg[j])));
    EXPECT_NEAR(db2[j], 2 * db[j], 1e-4 * (1 + std::abs(db[j])));
  }
  EXPECT_EQ(inplace, dx);
}

TEST(GeluKernel, TanhApproximationAndDerivative) {
  Rng rng(2);
  const int64_t n = 300;
  auto x = randn(n, rng, 3.0), dy = randn(n, rng);
  std::vector<float> y(n), dx(n);
  gelu_forward(x.data(), y.data(), n);
  std::vector<double> ref(n);
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    ref[i] = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  }
  EXPECT_LT(rel_err(y.data(), ref.data(), n), 1e-6);
  gelu_backward(x.data(), dy.data(), dx.data(), n);
  auto loss = [&] {
    std::vector<float> yy(n);
    gelu_forward(x.data(), yy.data(), n);
    return weighted_sum(yy.data(), dy.data(), n);
  };
  EXPECT_LT(fd_error(loss, x.data(), dx.data(), n, rng, 1e-2f, 100), 1e-3);
}

TEST(SoftmaxKernel, StableForwardAndBackward) {
  Rng rng(3);
  const int64_t rows = 5, n = 17;
  auto x = randn(rows * n, rng, 3.0), dy = randn(rows * n, rng);
  x[3] = 1000.0f;  // would overflow exp without the max shift
  std::vector<float> y(rows * n), dx(rows * n);
  softmax_forward(x.data(), y.data(), rows, n);
  std::vector<double> ref(rows * n);
  for (int64_t r = 0; r < rows; ++r) {
    double m = *std::max_element(x.begin() + r * n, x.begin() + (r + 1) * n), z = 0;
    for (int64_t j = 0; j < n; ++j) z += std::exp(static_cast<double>(x[r * n + j]) - m);
    for (int64_t j = 0; j < n; ++j) ref[r * n + j] = std::exp(x[r * n + j] - m) / z;
  }
  EXPECT_LT(rel_err(y.data(), ref.data(), y.size()), 1e-6);
  softmax_backward(y.data(), dy.data(), dx.data(), rows, n);
  x[3] = 3.0f;  // finite differences need a row that is not saturated
  softmax_forward(x.data(), y.data(), rows, n);
  softmax_backward(y.data(), dy.data(), dx.data(), rows, n);
  auto loss = [&] {
    std::vector<float> yy(rows * n);
    softmax_forward(x.data(), yy.data(), rows, n);
    return weighted_sum(yy.data(), dy.data(), yy.size());
  };
  EXPECT_LT(fd_error(loss, x.data(), dx.data(), x.size(), rng, 1e-2f, 60), 1e-3);
}

TEST(CrossEntropyKernel, LossGradientCountsAndIgnoredRows) {
  Rng rng(4);
  const int64_t rows = 9, V = 11;
  auto logits = randn(rows * V, rng, 2.0);
  std::vector<int32_t> t(rows);
  for (auto& v : t) v = static_cast<int32_t>(rng.below(V));
  t[2] = -1;
  t[6] = -100;
  // Row 0 predicts its target; row 1 surely does not.
  logits[0 * V + t[0]] = 50.0f;
  logits[1 * V + (t[1] + 1) % V] = 50.0f;
  double ref = 0;
  int64_t valid = 0, correct_ref = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (t[r] < 0) continue;
    const float* x = logits.data() + r * V;
    double m = *std::max_element(x, x + V), z = 0;
    for (int64_t j = 0; j < V; ++j) z += std::exp(x[j] - m);
    ref += m + std::log(z) - x[t[r]];
    correct_ref += std::max_element(x, x + V) - x == t[r];
    ++valid;
  }
  ref /= valid;
  std::vector<float> g(rows * V);
  int64_t correct = -1, n_valid = -1;
  const double loss = cross_entropy(logits.data(), t.data(), g.data(), rows, V, &correct, &n_valid);
  EXPECT_NEAR(loss, ref, 1e-6 * std::abs(ref));
  EXPECT_EQ(n_valid, 7);
  EXPECT_EQ(correct, correct_ref);
  EXPECT_GE(correct, 1);
  for (int64_t j = 0; j < V; ++j) EXPECT_EQ(g[2 * V + j], 0.0f);
  logits[0 * V + t[0]] = 2.0f;  // unsaturate for finite differences
  logits[1 * V + (t[1] + 1) % V] = 2.0f;
  cross_entropy(logits.data(), t.data(), g.data(), rows, V);
  auto f = [&] { return cross_entropy(logits.data(), t.data(), nullptr, rows, V); };
  EXPECT_LT(fd_error(f, logits.data(), g.data(), logits.size(), rng, 1e-2f, 60), 1e-3);
  // In place: dlogits over the logits.
  std::vector<float> inplace = logits;
  EXPECT_DOUBLE_EQ(cross_entropy(inplace.data(), t.data(), inplace.data(), rows, V), f());
  EXPECT_EQ(inplace, g);
  // Nothing counted: loss 0, no gradient.
  std::vector<int32_t> none(rows, -1);
  EXPECT_EQ(cross_entropy(logits.data(), none.data(), g.data(), rows, V), 0.0);
  EXPECT_EQ(*std::max_element(g.begin(), g.end()), 0.0f);
}

TEST(CrossEntropyKernel, TargetOutOfRangeIsAnError) {
  std::vector<float> logits(3 * 5, 0.0f);
  std::vector<int32_t> t = {0, 7, 1};
  std::string msg = error_message([&] { cross_entropy(logits.data(), t.data(), nullptr, 3, 5); });
  EXPECT_NE(msg.find("target id 7"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vocabulary size 5"), std::string::npos) << msg;
}

TEST(EmbeddingKernel, LookupScatterAddAndBadIds) {
  Rng rng(5);
  const int64_t V = 6, d = 5, n = 8;
  auto E = randn(V * d, rng), dy = randn(n * d, rng);
  std::vector<int32_t> ids = {3, 0, 3, 5, 1, 3, 0, 2};
  std::vector<float> y(n * d), dE(V * d, 0.0f);
  embedding_forward(ids.data(), E.data(), y.data(), n, V, d);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) EXPECT_EQ(y[i * d + j], E[ids[i] * d + j]);
  embedding_backward(ids.data(), dy.data(), dE.data(), n, V, d);
  auto loss = [&] {
    std::vector<float> yy(n * d);
    embedding_forward(ids.data(), E.data(), yy.data(), n, V, d);
    return weighted_sum(yy.data(), dy.data(), yy.size());
  };
  EXPECT_LT(fd_error(loss, E.data(), dE.data(), E.size(), rng, 1e-2f, 100), 1e-4);
  for (int64_t j = 0; j < d; ++j) EXPECT_EQ(dE[4 * d + j], 0.0f);  // id 4 never used

  std::vector<int32_t> bad = {1, 6};
  std::string msg = error_message([&] { embedding_forward(bad.data(), E.data(), y.data(), 2, V, d); });
  EXPECT_NE(msg.find("token id 6"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vocabulary size 6"), std::string::npos) << msg;
  bad[1] = -2;
  EXPECT_THROW(embedding_forward(bad.data(), E.data(), y.data(), 2, V, d), Error);
  EXPECT_THROW(embedding_backward(bad.data(), dy.data(), dE.data(), 2, V, d), Error);
}

// ---------------------------------------------------------------- layers

TEST(LayerNormModule, ParamsInitAndGradients) {
  Rng rng(6);
  const int d = 24;
  const int64_t rows = 6;
  LayerNorm ln(d);
  ParamList ps;
  ln.collect_params("norm1.", ps);
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0].name, "norm1.weight");
  EXPECT_EQ(ps[1].name, "norm1.bias");
  EXPECT_EQ(ps[0].param->kind, ParamKind::NoDecay);
  EXPECT_EQ(ps[1].param->kind, ParamKind::NoDecay);
  EXPECT_EQ(ln.weight.value[5], 1.0f);
  EXPECT_EQ(ln.bias.value[5], 0.0f);
  fill_randn(ln.weight, rng, 1.0);
  fill_randn(ln.bias, rng, 1.0);
  auto x = randn(rows * d, rng), dy = randn(rows * d, rng);
  std::vector<float> y(rows * d), dx(rows * d);
  auto loss = [&] {
    std::vector<float> yy(rows * d);
    ln.forward(x.data(), yy.data(), rows);
    return weighted_sum(yy.data(), dy.data(), yy.size());
  };
  // The layer keeps its own copy of x: overwriting the input after forward changes nothing.
  std::vector<float> xin = x;
  ln.forward(xin.data(), y.data(), rows);
  std::fill(xin.begin(), xin.end(), 0.0f);
  ln.backward(dy.data(), dx.data());
  EXPECT_LT(fd_error(loss, x.data(), dx.data(), x.size(), rng), 1e-3);
  EXPECT_LT(fd_error(loss, ln.weight.value.data(), ln.weight.grad.data(), d, rng), 1e-3);
  EXPECT_LT(fd_error(loss, ln.bias.value.data(), ln.bias.grad.data(), d, rng), 1e-3);
}

TEST(LinearLayer, Gradients) {
  Rng rng(7);
  const int in = 12, out = 9;
  const int64_t rows = 5;
  Linear lin(in, out);
  lin.init(rng, 0.3f);
  fill_randn(lin.bias, rng, 0.3);
  auto x = randn(rows * in, rng), dy = randn(rows * out, rng);
  std::vector<float> y(rows * out), dx(rows * in);
  lin.forward(x.data(), y.data(), rows);
  lin.backward(x.data(), dy.data(), dx.data(), rows);
  auto loss = [&] {
    std::vector<float> yy(rows * out);
    lin.forward(x.data(), yy.data(), rows);
    return weighted_sum(yy.data(), dy.data(), yy.size());
  };
  EXPECT_LT(fd_error(loss, x.data(), dx.data(), x.size(), rng), 1e-3);
  EXPECT_LT(fd_error(loss, lin.weight.value.data(), lin.weight.grad.data(), in * out, rng), 1e-3);
  EXPECT_LT(fd_error(loss, lin.bias.value.data(), lin.bias.grad.data(), out, rng), 1e-3);
}

TEST(MlpLayer, ParamsInitAndGradients) {
  Rng rng(8);
  const int d = 16;
  const int64_t rows = 7;
  Mlp mlp(d);
  ParamList ps;
  mlp.collect_params("mlp.", ps);
  std::vector<std::string> names;
  for (auto& p : ps) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
                                             "mlp.fc2.bias"}));
  EXPECT_EQ(mlp.fc1.weight.value.shape(), (Shape{4 * d, d}));
  EXPECT_EQ(mlp.fc2.weight.value.shape(), (Shape{d, 4 * d}));

  Mlp big(64);
  big.init(rng, 8);
  auto std_of = [](const Tensor& t) {
    double s = 0;
    for (int64_t i = 0; i < t.numel(); ++i) s += double(t[i]) * t[i];
    return std::sqrt(s / t.numel());
  };
  EXPECT_NEAR(std_of(big.fc1.weight.value), 0.02, 0.001);
  EXPECT_NEAR(std_of(big.fc2.weight.value), 0.02 / 4.0, 0.00025);
  EXPECT_EQ(std_of(big.fc1.bias.value), 0.0);

  for (auto& p : ps) fill_randn(*p.param, rng, 0.4);
  auto x = randn(rows * d, rng), dy = randn(rows * d, rng);
  std::vector<float> y(rows * d), dx(rows * d);
  mlp.forward(x.data(), y.data(), rows);
  mlp.backward(dy.data(), dx.data());
  auto loss = [&] {
    std::vector<float> yy(rows * d);
    mlp.forward(x.data(), yy.data(), rows);
    return weighted_sum(yy.data(), dy.data(), yy.size());
  };
  EXPECT_LT(fd_error(loss, x.data(), dx.data(), x.size(), rng), 1e-3);
  for (auto& p : ps)
    EXPECT_LT(fd_error(loss, p.param->value.data(), p.param->grad.data(), p.param->value.numel(),
                       rng),
              5e-3)
        << p.name;
}

class AttentionTest : public ::testing::TestWithParam<int> {};

TEST_P(AttentionTest, ForwardMatchesReferenceAndGradients) {
  const int d = 32, heads = 4, rot = GetParam(), B = 2, L = 40;  // two row blocks
  Rng rng(9 + rot);
  Attention att(d, heads, rot);
  ParamList ps;
  att.collect_params("mixer.", ps);
  std::vector<std::string> names;
  for (auto& p : ps) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"mixer.Wqkv.weight", "mixer.Wqkv.bias",
                                             "mixer.out_proj.weight", "mixer.out_proj.bias"}));
  EXPECT_EQ(att.Wqkv.weight.value.shape(), (Shape{3 * d, d}));
  // Weights large enough that attention is far from uniform.
  for (auto& p : ps) fill_randn(*p.param, rng, 0.3);
  const size_t n = static_cast<size_t>(B) * L * d;
  auto x = randn(n, rng), dy = randn(n, rng);
  std::vector<float> y(n), yref(n), dx(n);
  att.forward(x.data(), y.data(), B, L);
  att.forward_reference(x.data(), yref.data(), B, L);
  EXPECT_LT(rel_err(y.data(), yref.data(), n), 2e-6);
  att.backward(dy.data(), dx.data());
  auto loss = [&] {
    std::vector<float> yy(n);
    att.forward(x.data(), yy.data(), B, L);
    return weighted_sum(yy.data(), dy.data(), n);
  };
  EXPECT_LT(fd_error(loss, x.data(), dx.data(), n, rng, 5e-3f, 40), 1e-3);
  for (auto& p : ps)
    EXPECT_LT(fd_error(loss, p.param->value.data(), p.param->grad.data(), p.param->value.numel(),
                       rng, 5e-3f, 40),
              5e-3)
        << p.name;
  // Causality: changing the last token leaves earlier outputs alone.
  std::vector<float> x2 = x, y2(n);
  for (int c = 0; c < d; ++c) x2[(L - 1) * d + c] += 1.0f;
  att.forward(x2.data(), y2.data(), B, L);
  for (int i = 0; i < (L - 1) * d; ++i) EXPECT_EQ(y2[i], y[i]);
}

TEST_P(AttentionTest, StepAndPrefillMatchForward) {
  const int d = 32, heads = 4, rot = GetParam(), B = 3, L = 70, P = 37;
  Rng rng(20 + rot);
  Attention att(d, heads, rot);
  ParamList ps;
  att.collect_params("", ps);
  for (auto& p : ps) fill_randn(*p.param, rng, 0.3);
  const size_t n = static_cast<size_t>(B) * L * d;
  auto x = randn(n, rng);
  std::vector<float> y(n), xt(B * d), yt(B * d);
  att.forward(x.data(), y.data(), B, L);
  auto step_err = [&](MixerState& st, int from) {
    double e = 0, m = 0;
    for (int t = from; t < L; ++t) {
      for (int b = 0; b < B; ++b)
        std::copy_n(x.data() + (size_t(b) * L + t) * d, d, xt.data() + b * d);
      att.step(xt.data(), yt.data(), st);
      for (int b = 0; b < B; ++b)
        for (int c = 0; c < d; ++c) {
          const float ref = y[(size_t(b) * L + t) * d + c];
          e = std::max(e, double(std::abs(yt[b * d + c] - ref)));
          m = std::max(m, double(std::abs(ref)));
        }
    }
    return e / m;
  };
  auto st = att.new_state(B);
  EXPECT_LT(step_err(*st, 0), 1e-5);  // 70 steps: the cache grows past its first capacity
  EXPECT_EQ(static_cast<AttentionCache&>(*st).len, L);

  std::vector<float> xp(size_t(B) * P * d), yp(xp.size());
  for (int b = 0; b < B; ++b)
    std::copy_n(x.data() + size_t(b) * L * d, P * d, xp.data() + size_t(b) * P * d);
  auto st2 = att.new_state(B);
  att.prefill(xp.data(), yp.data(), B, P, *st2);
  for (int b = 0; b < B; ++b)
    EXPECT_LT(rel_err(yp.data() + size_t(b) * P * d, y.data() + size_t(b) * L * d, P * d), 1e-5);
  EXPECT_LT(step_err(*st2, P), 1e-5);

  // A prefill on a used state appends to its cache (chunked prefill): the rest of the
  // sequence after the first P rows gives the whole-sequence rows.
  auto st4 = att.new_state(B);
  att.prefill(xp.data(), yp.data(), B, P, *st4);
  std::vector<float> xr(size_t(B) * (L - P) * d), yr(xr.size());
  for (int b = 0; b < B; ++b)
    std::copy_n(x.data() + (size_t(b) * L + P) * d, (L - P) * d, xr.data() + size_t(b) * (L - P) * d);
  att.prefill(xr.data(), yr.data(), B, L - P, *st4);
  for (int b = 0; b < B; ++b)
    EXPECT_LT(rel_err(yr.data() + size_t(b) * (L - P) * d, y.data() + (size_t(b) * L + P) * d,
                      (L - P) * d), 1e-5);
  EXPECT_EQ(static_cast<AttentionCache&>(*st4).len, L);
  // A wrong batch size is refused.
  auto st3 = att.new_state(B + 1);
  EXPECT_THROW(att.prefill(xp.data(), yp.data(), B, P, *st3), Error);
}

INSTANTIATE_TEST_SUITE_P(Rotary, AttentionTest, ::testing::Values(0, 4, 8));

TEST(AttentionLayer, InitAndBadConfig) {
  Rng rng(11);
  Attention att(64, 4);
  att.init(rng, 2);
  double s = 0;
  const Tensor& w = att.out_proj.weight.value;
  for (int64_t i = 0; i < w.numel(); ++i) s += double(w[i]) * w[i];
  EXPECT_NEAR(std::sqrt(s / w.numel()), 0.01, 0.0005);
  EXPECT_EQ(att.Wqkv.bias.value[7], 0.0f);
  EXPECT_THROW(Attention(30, 4), Error);
  EXPECT_THROW(Attention(32, 4, 3), Error);
  EXPECT_THROW(Attention(32, 4, 10), Error);
}
