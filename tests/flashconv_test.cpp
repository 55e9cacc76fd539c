// FlashConv: every fused kernel against the direct O(L^2) convolution (double accumulation),
// every instruction-set path against the others, gradients against finite differences, and
// state passing against the unchunked convolution.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <string>
#include <utility>
#include <vector>

#include "core/buffer.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "kernels/flashconv/fc_internal.h"
#include "kernels/flashconv/flashconv.h"

using namespace hippo;

namespace {

using Vec = std::vector<float>;

Vec randn(size_t n, Rng& rng, float scale = 1.0f) {
  Vec v(n);
  for (auto& x : v) x = scale * static_cast<float>(rng.normal());
  return v;
}

// Relative max-norm error max|a-b| / max|b|.
double rel_err(const Vec& a, const Vec& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::abs(static_cast<double>(a[i]) - b[i]));
    den = std::max(den, std::abs(static_cast<double>(b[i])));
  }
  return num / den;
}

// A decaying kernel like an SSM's (plus noise), so long convolutions stay well scaled.
Vec make_kernel(int H, int L, Rng& rng) {
  Vec K(static_cast<size_t>(H) * L);
  for (int h = 0; h < H; ++h)
    for (int l = 0; l < L; ++l)
      K[static_cast<size_t>(h) * L + l] =
          static_cast<float>(rng.normal() * std::exp(-l / (8.0 + 4 * h)));
  return K;
}

// The engine levels this CPU has (core/cpu_features.h).
std::vector<Isa> isas() {
  std::vector<Isa> r;
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (i <= detected_isa()) r.push_back(i);
  return r;
}

struct IsaGuard {
  ~IsaGuard() { clear_isa_override(); }
};

struct Shape3 {
  int B, H, L;
};
// Odd and even L, L below and above the vector width and the FFT leaf, partial lane groups.
const Shape3 kShapes[] = {{1, 1, 1},   {2, 3, 2},   {1, 5, 3},    {2, 17, 16}, {1, 16, 31},
                          {3, 9, 33},  {2, 33, 64}, {1, 20, 100}, {2, 7, 257}, {1, 18, 1000},
                          {1, 2, 2048}};

constexpr double kTol = 2e-5;  // fp32 FFT vs double direct sum, relative max-norm

}  // namespace

TEST(FlashConv, ForwardMatchesDirect) {
  IsaGuard guard;
  Rng rng(1);
  for (Isa isa : isas()) {
    set_isa_override(isa);
    for (auto s : kShapes)
      for (bool withD : {false, true}) {
        size_t n = static_cast<size_t>(s.B) * s.H * s.L;
        Vec u = randn(n, rng), K = make_kernel(s.H, s.L, rng), D = randn(s.H, rng);
        Vec y(n), yr(n);
        const float* Dp = withD ? D.data() : nullptr;
        flashconv_fwd(u.data(), K.data(), Dp, y.data(), s.B, s.H, s.L);
        flashconv_ref_fwd(u.data(), K.data(), Dp, yr.data(), s.B, s.H, s.L);
        EXPECT_LT(rel_err(y, yr), kTol) << isa_name(isa) << " B=" << s.B
                                        << " H=" << s.H << " L=" << s.L << " D=" << withD;
      }
  }
}

TEST(FlashConv, BackwardMatchesDirect) {
  IsaGuard guard;
  Rng rng(2);
  for (Isa isa : isas()) {
    set_isa_override(isa);
    for (auto s : kShapes) {
      size_t n = static_cast<size_t>(s.B) * s.H * s.L;
      Vec u = randn(n, rng), K = make_kernel(s.H, s.L, rng), D = randn(s.H, rng),
          dy = randn(n, rng);
      // dK, dD start non-zero: the kernels must accumulate.
      Vec dK0 = randn(K.size(), rng), dD0 = randn(s.H, rng);
      Vec du(n, 7.0f), dK = dK0, dD = dD0, dur(n), dKr = dK0, dDr = dD0;
      flashconv_bwd(u.data(), K.data(), D.data(), dy.data(), du.data(), dK.data(), dD.data(), s.B,
                    s.H, s.L);
      flashconv_ref_bwd(u.data(), K.data(), D.data(), dy.data(), dur.data(), dKr.data(),
                        dDr.data(), s.B, s.H, s.L);
      std::string where = std::string(isa_name(isa)) + " B=" + std::to_string(s.B) +
                          " H=" + std::to_string(s.H) + " L=" + std::to_string(s.L);
      EXPECT_LT(rel_err(du, dur), kTol) << "du " << where;
      EXPECT_LT(rel_err(dK, dKr), kTol) << "dK " << where;
      EXPECT_LT(rel_err(dD, dDr), kTol) << "dD " << where;
    }
  }
}

TEST(FlashConv, H3ForwardBackwardMatchDirect) {
  IsaGuard guard;
  Rng rng(3);
  for (Isa isa : isas()) {
    set_isa_override(isa);
    for (auto s : kShapes) {
      size_t n = static_cast<size_t>(s.B) * s.H * s.L;
      Vec q = randn(n, rng), k = randn(n, rng), v = randn(n, rng), dy = randn(n, rng);
      Vec K = make_kernel(s.H, s.L, rng), D = randn(s.H, rng);
      std::string where = std::string(isa_name(isa)) + " B=" + std::to_string(s.B) +
                          " H=" + std::to_string(s.H) + " L=" + std::to_string(s.L);
      Vec y(n), yr(n);
      flashconv_h3_fwd(q.data(), k.data(), v.data(), K.data(), D.data(), y.data(), s.B, s.H, s.L);
      flashconv_ref_h3_fwd(q.data(), k.data(), v.data(), K.data(), D.data(), yr.data(), s.B, s.H,
                           s.L);
      EXPECT_LT(rel_err(y, yr), kTol) << "y " << where;

      Vec dK0 = randn(K.size(), rng), dD0 = randn(s.H, rng);
      Vec dq(n), dk(n), dv(n), dK = dK0, dD = dD0;
      Vec dqr(n), dkr(n), dvr(n), dKr = dK0, dDr = dD0;
      flashconv_h3_bwd(q.data(), k.data(), v.data(), K.data(), D.data(), dy.data(), dq.data(),
                       dk.data(), dv.data(), dK.data(), dD.data(), s.B, s.H, s.L);
      flashconv_ref_h3_bwd(q.data(), k.data(), v.data(), K.data(), D.data(), dy.data(),
                           dqr.data(), dkr.data(), dvr.data(), dKr.data(), dDr.data(), s.B, s.H,
                           s.L);
      EXPECT_LT(rel_err(dq, dqr), kTol) << "dq " << where;
      EXPECT_LT(rel_err(dk, dkr), kTol) << "dk " << where;
      EXPECT_LT(rel_err(dv, dvr), kTol) << "dv " << where;
      EXPECT_LT(rel_err(dK, dKr), kTol) << "dK " << where;
      EXPECT_LT(rel_err(dD, dDr), kTol) << "dD " << where;
    }
  }
}

TEST(FlashConv, IsaPathsAgree) {
  IsaGuard guard;
  auto paths = isas();
  ASSERT_GE(paths.size(), 1u);
  Rng rng(4);
  const int B = 2, H = 37, L = 1500;  // partial lane groups for both 8 and 16 lanes
  size_t n = static_cast<size_t>(B) * H * L;
  Vec q = randn(n, rng), k = randn(n, rng), v = randn(n, rng), dy = randn(n, rng);
  Vec K = make_kernel(H, L, rng), D = randn(H, rng);
  std::vector<std::vector<Vec>> outs;
  for (Isa isa : paths) {
    set_isa_override(isa);
    Vec y(n), dq(n), dk(n), dv(n), dK(K.size()), dD(H);
    flashconv_h3_fwd(q.data(), k.data(), v.data(), K.data(), D.data(), y.data(), B, H, L);
    flashconv_h3_bwd(q.data(), k.data(), v.data(), K.data(), D.data(), dy.data(), dq.data(),
                     dk.data(), dv.data(), dK.data(), dD.data(), B, H, L);
    outs.push_back({y, dq, dk, dv, dK, dD});
  }
  const char* names[] = {"y", "dq", "dk", "dv", "dK", "dD"};
  for (size_t p = 1; p < paths.size(); ++p)
    for (int i = 0; i < 6; ++i)
      EXPECT_LT(rel_err(outs[p][i], outs[0][i]), 2e-6)
          << names[i] << ": " << isa_name(paths[p]) << " vs "
          << isa_name(paths[0]);
}

TEST(FlashConv, ThreadCountDoesNotChangeResults) {
  Rng rng(5);
  const int B = 3, H = 5, L = 300;  // fewer groups than threads: the batch gets split
  size_t n = static_cast<size_t>(B) * H * L;
  Vec u = randn(n, rng), K = make_kernel(H, L, rng), D = randn(H, rng), dy = randn(n, rng);
  Vec y1(n), y2(n), du1(n), du2(n), dK1(K.size()), dK2(K.size()), dD1(H), dD2(H);
  set_num_threads(1);
  flashconv_fwd(u.data(), K.data(), D.data(), y1.data(), B, H, L);
  flashconv_bwd(u.data(), K.data(), D.data(), dy.data(), du1.data(), dK1.data(), dD1.data(), B, H,
                L);
  set_num_threads(2);
  flashconv_fwd(u.data(), K.data(), D.data(), y2.data(), B, H, L);
  flashconv_bwd(u.data(), K.data(), D.data(), dy.data(), du2.data(), dK2.data(), dD2.data(), B, H,
                L);
  set_num_threads(0);
  EXPECT_EQ(y1, y2);
  EXPECT_EQ(du1, du2);
  EXPECT_EQ(dK1, dK2);
  EXPECT_EQ(dD1, dD2);
}

// Outputs past the streaming threshold take the non-temporal-store path by default, and the H3
// forward and backward prefetch rows during their FFTs: both only change how memory is accessed, so results
// must be bit-identical with them off. Checked on the H3 op (its five outputs) and on the
// chunked engine call of state passing (Args::chunks), against one chunk at a time.
TEST(FlashConv, MemoryTrafficSwitchesDoNotChangeResults) {
  Rng rng(6);
  const int B = 4, H = 64, L = 16384;  // 16 MiB per tensor: the streamed size
  const size_t n = static_cast<size_t>(B) * H * L;
  // Streaming needs 64-byte aligned rows (std::vector's large blocks are only 16-aligned).
  Buffer bufs[5];
  float* in[4];
  for (int i = 0; i < 4; ++i) {  // q, k, v, dy
    in[i] = bufs[i].get(n);
    for (size_t j = 0; j < n; ++j) in[i][j] = static_cast<float>(rng.normal());
  }
  float* outs = bufs[4].get(8 * n);  // y, dq, dk, dv for each setting
  Vec K = make_kernel(H, L, rng), D = randn(H, rng);
  Vec dK[2], dD[2];
  for (int off = 0; off < 2; ++off) {
    fc::tuning().stream_outputs = (off == 0);
    fc::tuning().prefetch_rows = (off == 0);
    float* o = outs + static_cast<size_t>(4 * off) * n;
    dK[off].assign(K.size(), 0.0f), dD[off].assign(H, 0.0f);
    flashconv_h3_fwd(in[0], in[1], in[2], K.data(), D.data(), o, B, H, L);
    flashconv_h3_bwd(in[0], in[1], in[2], K.data(), D.data(), in[3], o + n, o + 2 * n, o + 3 * n,
                     dK[off].data(), dD[off].data(), B, H, L);
  }
  fc::tuning() = fc::Tuning{};
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(std::equal(outs + i * n, outs + (i + 1) * n, outs + (4 + i) * n)) << "output " << i;
  EXPECT_EQ(dK[0], dK[1]);
  EXPECT_EQ(dD[0], dD[1]);

  // Chunked call: 3 chunks of T inside rows of length 3T + 5 against per-chunk calls.
  const int T = 64, Lr = 3 * T + 5, Hc = 20;
  size_t nc = static_cast<size_t>(2) * Hc * Lr;
  Vec u = randn(nc, rng), Kc = make_kernel(Hc, T, rng), Dc = randn(Hc, rng), y1(nc), y2(nc);
  fc::Args a;
  a.op = fc::Op::Fwd;
  a.u = u.data(), a.y = y1.data(), a.K = Kc.data(), a.D = Dc.data();
  a.B = 2, a.H = Hc, a.L = T, a.ld = Lr, a.kld = T, a.chunks = 3, a.chunk_stride = T;
  fc::run(a);
  for (int c = 0; c < 3; ++c) {
    fc::Args b;
    b.op = fc::Op::Fwd;
    b.u = u.data() + c * T, b.y = y2.data() + c * T, b.K = Kc.data(), b.D = Dc.data();
    b.B = 2, b.H = Hc, b.L = T, b.ld = Lr, b.kld = T;
    fc::run(b);
  }
  for (int r = 0; r < 2 * Hc; ++r)
    for (int t = 0; t < 3 * T; ++t)
      ASSERT_EQ(y1[static_cast<size_t>(r) * Lr + t], y2[static_cast<size_t>(r) * Lr + t])
          << "row " << r << " t " << t;
}

// The H3 forward's row prefetch (on past the streaming size) at a shape where the last channel
// group is partial and rows are not a whole number of cache lines; and against the direct sum
// on a few rows, so that a path that skipped work would fail even if both settings agreed.
TEST(FlashConv, H3PrefetchOddShape) {
  Rng rng(7);
  const int B = 2, H = 37, L = 57001;  // 16.9 MB per tensor
  const size_t n = static_cast<size_t>(B) * H * L;
  Vec q = randn(n, rng), k = randn(n, rng), v = randn(n, rng);
  Vec K = make_kernel(H, L, rng), D = randn(H, rng), y[2];
  for (int off = 0; off < 2; ++off) {
    fc::tuning().prefetch_rows = (off == 0);
    y[off].assign(n, 0.0f);
    flashconv_h3_fwd(q.data(), k.data(), v.data(), K.data(), D.data(), y[off].data(), B, H, L);
  }
  fc::tuning() = fc::Tuning{};
  EXPECT_EQ(y[0], y[1]);
  for (int r : {0, H - 1, 2 * H - 1}) {  // (batch, channel) rows; t near the start and the end
    const int h = r % H;
    const size_t row = static_cast<size_t>(r) * L;
    for (int t : {0, 1, 17, L - 1}) {
      double acc = static_cast<double>(D[h]) * k[row + t] * v[row + t];
      for (int s = 0; s <= t; ++s)
        acc += static_cast<double>(K[static_cast<size_t>(h) * L + t - s]) * k[row + s] * v[row + s];
      acc *= q[row + t];
      EXPECT_NEAR(y[0][row + t], acc, 2e-3 * (1.0 + std::abs(acc))) << "row " << r << " t " << t;
    }
  }
}

// Loss = sum(dy * y). y is linear in each of q, k, v, K, D separately, so a central
// difference is exact up to rounding; this checks the gradient formulas independently of the
// direct reference.
TEST(FlashConv, H3GradientsMatchFiniteDifferences) {
  Rng rng(6);
  const int B = 2, H = 3, L = 37;
  size_t n = static_cast<size_t>(B) * H * L;
  Vec q = randn(n, rng), k = randn(n, rng), v = randn(n, rng), dy = randn(n, rng);
  Vec K = make_kernel(H, L, rng), D = randn(H, rng);
  Vec dq(n), dk(n), dv(n), dK(K.size()), dD(H);
  flashconv_h3_bwd(q.data(), k.data(), v.data(), K.data(), D.data(), dy.data(), dq.data(),
                   dk.data(), dv.data(), dK.data(), dD.data(), B, H, L);
  auto loss = [&]() {
    Vec y(n);
    flashconv_h3_fwd(q.data(), k.data(), v.data(), K.data(), D.data(), y.data(), B, H, L);
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += static_cast<double>(dy[i]) * y[i];
    return s;
  };
  struct Case {
    const char* name;
    Vec* x;
    const Vec* g;
  };
  Case cases[] = {{"q", &q, &dq}, {"k", &k, &dk}, {"v", &v, &dv}, {"K", &K, &dK}, {"D", &D, &dD}};
  const float eps = 0.25f;
  for (auto& c : cases) {
    double gmax = 0;
    for (float g : *c.g) gmax = std::max(gmax, static_cast<double>(std::abs(g)));
    for (int trial = 0; trial < 8; ++trial) {
      size_t i = rng.below(c.x->size());
      float x0 = (*c.x)[i];
      (*c.x)[i] = x0 + eps;
      double lp = loss();
      (*c.x)[i] = x0 - eps;
      double lm = loss();
      (*c.x)[i] = x0;
      double fd = (lp - lm) / (2.0 * eps);
      EXPECT_NEAR(fd, (*c.g)[i], 1e-4 * gmax + 1e-5) << c.name << "[" << i << "]";
    }
  }
}

TEST(FlashConv, PlainGradientsMatchFiniteDifferences) {
  Rng rng(7);
  const int B = 2, H = 2, L = 29;
  size_t n = static_cast<size_t>(B) * H * L;
  Vec u = randn(n, rng), dy = randn(n, rng), K = make_kernel(H, L, rng), D = randn(H, rng);
  Vec du(n), dK(K.size()), dD(H);
  flashconv_bwd(u.data(), K.data(), D.data(), dy.data(), du.data(), dK.data(), dD.data(), B, H, L);
  auto loss = [&]() {
    Vec y(n);
    flashconv_fwd(u.data(), K.data(), D.data(), y.data(), B, H, L);
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += static_cast<double>(dy[i]) * y[i];
    return s;
  };
  struct Case {
    const char* name;
    Vec* x;
    const Vec* g;
  };
  Case cases[] = {{"u", &u, &du}, {"K", &K, &dK}, {"D", &D, &dD}};
  const float eps = 0.25f;
  for (auto& c : cases) {
    double gmax = 0;
    for (float g : *c.g) gmax = std::max(gmax, static_cast<double>(std::abs(g)));
    for (int trial = 0; trial < 8; ++trial) {
      size_t i = rng.below(c.x->size());
      float x0 = (*c.x)[i];
      (*c.x)[i] = x0 + eps;
      double lp = loss();
      (*c.x)[i] = x0 - eps;
      double lm = loss();
      (*c.x)[i] = x0;
      EXPECT_NEAR((lp - lm) / (2.0 * eps), (*c.g)[i], 1e-4 * gmax + 1e-5) << c.name << "[" << i
                                                                           << "]";
    }
  }
}

TEST(FlashConv, BadInputIsAnError) {
  Vec a(16), K(16), y(16);
  EXPECT_THROW(flashconv_fwd(a.data(), K.data(), nullptr, y.data(), 1, 1, 0), Error);
  EXPECT_THROW(flashconv_fwd(nullptr, K.data(), nullptr, y.data(), 1, 1, 16), Error);
  EXPECT_THROW(flashconv_fwd(a.data(), nullptr, nullptr, y.data(), 1, 1, 16), Error);
  Vec D(1);
  EXPECT_THROW(flashconv_bwd(a.data(), K.data(), D.data(), a.data(), y.data(), K.data(), nullptr,
                             1, 1, 16),
               Error);
  try {
    flashconv_h3_fwd(a.data(), nullptr, a.data(), K.data(), nullptr, y.data(), 1, 1, 16);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'k'"), std::string::npos) << e.what();
  }
}

// ---- state passing ----

namespace {

// A bilinear-discretised S4D-Lin SSM (spec §1) with random C, as (dA, C dB).
struct TestSsm {
  Vec dA_re, dA_im, CB_re, CB_im;
  int M;
  DiagSsmDiscrete view() const {
    return {dA_re.data(), dA_im.data(), CB_re.data(), CB_im.data(), M};
  }
};

TestSsm make_ssm(int H, int M, Rng& rng) {
  TestSsm s;
  s.M = M;
  size_t n = static_cast<size_t>(H) * M;
  s.dA_re.resize(n), s.dA_im.resize(n), s.CB_re.resize(n), s.CB_im.resize(n);
  for (int h = 0; h < H; ++h) {
    double dt = std::exp(std::log(0.01) + rng.uniform() * (std::log(0.2) - std::log(0.01)));
    for (int m = 0; m < M; ++m) {
      std::complex<double> A(-0.5, 3.14159265358979 * m), one(1.0, 0.0);
      std::complex<double> den = one - dt * A / 2.0;
      std::complex<double> dA = (one + dt * A / 2.0) / den, dB = dt / den;
      std::complex<double> C(rng.normal(), rng.normal());
      std::complex<double> cb = C * dB;
      size_t i = static_cast<size_t>(h) * M + m;
      s.dA_re[i] = static_cast<float>(dA.real()), s.dA_im[i] = static_cast<float>(dA.imag());
      s.CB_re[i] = static_cast<float>(cb.real()), s.CB_im[i] = static_cast<float>(cb.imag());
    }
  }
  return s;
}

}  // namespace

TEST(FlashConv, SsmKernelMatchesDefinition) {
  Rng rng(8);
  const int H = 2, M = 4, L = 50;
  TestSsm s = make_ssm(H, M, rng);
  Vec K(static_cast<size_t>(H) * L);
  diag_ssm_kernel(s.view(), H, L, K.data());
  for (int h = 0; h < H; ++h)
    for (int l = 0; l < L; l += 7) {
      std::complex<double> acc = 0;
      for (int m = 0; m < M; ++m) {
        size_t i = static_cast<size_t>(h) * M + m;
        std::complex<double> dA(s.dA_re[i], s.dA_im[i]), cb(s.CB_re[i], s.CB_im[i]);
        acc += cb * std::pow(dA, l);
      }
      EXPECT_NEAR(K[static_cast<size_t>(h) * L + l], 2.0 * acc.real(), 1e-5);
    }
}

TEST(FlashConv, StatePassingMatchesUnchunked) {
  Rng rng(9);
  const int B = 2, H = 3, M = 8;
  TestSsm s = make_ssm(H, M, rng);
  Vec D = randn(H, rng);
  for (int T : {16, 24}) {
    for (int L : {T - 1, T, T + 1, 10 * T + 3, 7 * T - 5}) {
      size_t n = static_cast<size_t>(B) * H * L;
      Vec u = randn(n, rng), K(static_cast<size_t>(H) * L), y(n), yr(n), yf(n);
      diag_ssm_kernel(s.view(), H, L, K.data());
      flashconv_ssm_fwd(u.data(), s.view(), D.data(), y.data(), B, H, L, T);
      flashconv_ref_fwd(u.data(), K.data(), D.data(), yr.data(), B, H, L);
      flashconv_fwd(u.data(), K.data(), D.data(), yf.data(), B, H, L);
      EXPECT_LT(rel_err(y, yr), kTol) << "T=" << T << " L=" << L;
      EXPECT_LT(rel_err(y, yf), kTol) << "T=" << T << " L=" << L;
    }
  }
}

TEST(FlashConv, StatePassingLongSequence) {
  Rng rng(10);
  const int B = 1, H = 17, M = 16, L = 10 * 256 + 3, T = 256;
  TestSsm s = make_ssm(H, M, rng);
  Vec D = randn(H, rng);
  size_t n = static_cast<size_t>(B) * H * L;
  Vec u = randn(n, rng), K(static_cast<size_t>(H) * L), y(n), yf(n);
  diag_ssm_kernel(s.view(), H, L, K.data());
  flashconv_ssm_fwd(u.data(), s.view(), D.data(), y.data(), B, H, L, T);
  flashconv_fwd(u.data(), K.data(), D.data(), yf.data(), B, H, L);
  EXPECT_LT(rel_err(y, yf), kTol);
}

// Backward of state passing: du and dD against the direct reference; the SSM parameter
// gradients against central differences of a double-precision loss sum(dy * y).
TEST(FlashConv, StatePassingBackward) {
  Rng rng(11);
  const int B = 2, H = 2, M = 4;
  TestSsm s = make_ssm(H, M, rng);
  Vec D = randn(H, rng);
  for (auto [L, T] : {std::pair{37, 8}, std::pair{16, 16}, std::pair{50, 7}, std::pair{48, 8}}) {
    size_t n = static_cast<size_t>(B) * H * L;
    Vec u = randn(n, rng), dy = randn(n, rng), K(static_cast<size_t>(H) * L);
    diag_ssm_kernel(s.view(), H, L, K.data());
    Vec du(n), dD(H, 0.5f), dur(n), dDr(H, 0.5f), dKr(K.size());
    size_t hm = static_cast<size_t>(H) * M;
    Vec gAr(hm, 0.25f), gAi(hm, 0.25f), gCr(hm, 0.25f), gCi(hm, 0.25f);  // accumulate onto
    DiagSsmDiscreteGrad g{gAr.data(), gAi.data(), gCr.data(), gCi.data()};
    flashconv_ssm_bwd(u.data(), s.view(), D.data(), dy.data(), du.data(), dD.data(), g, B, H, L, T);
    flashconv_ref_bwd(u.data(), K.data(), D.data(), dy.data(), dur.data(), dKr.data(), dDr.data(),
                      B, H, L);
    EXPECT_LT(rel_err(du, dur), kTol) << "L=" << L << " T=" << T;
    EXPECT_LT(rel_err(dD, dDr), kTol) << "L=" << L << " T=" << T;

    // loss(params) in double: sum_t dy[t] sum_{s<=t} K[t-s] u[s] (D's term has no params).
    auto loss = [&](std::vector<std::complex<double>> dA, std::vector<std::complex<double>> cb) {
      double total = 0;
      for (int h = 0; h < H; ++h) {
        std::vector<double> Kd(L, 0.0);
        for (int m = 0; m < M; ++m) {
          std::complex<double> p = cb[h * M + m];
          for (int l = 0; l < L; ++l) Kd[l] += 2.0 * p.real(), p *= dA[h * M + m];
        }
        for (int b = 0; b < B; ++b) {
          size_t row = (static_cast<size_t>(b) * H + h) * L;
          for (int t = 0; t < L; ++t)
            for (int j = 0; j <= t; ++j) total += double(dy[row + t]) * Kd[j] * u[row + t - j];
        }
      }
      return total;
    };
    std::vector<std::complex<double>> dA(hm), cb(hm);
    for (size_t i = 0; i < hm; ++i)
      dA[i] = {s.dA_re[i], s.dA_im[i]}, cb[i] = {s.CB_re[i], s.CB_im[i]};
    const double eps = 1e-6;
    for (size_t i = 0; i < hm; ++i) {
      const std::complex<double> steps[2] = {{eps, 0}, {0, eps}};
      for (int part = 0; part < 2; ++part) {
        auto a1 = dA, a2 = dA, c1 = cb, c2 = cb;
        a1[i] += steps[part], a2[i] -= steps[part];
        c1[i] += steps[part], c2[i] -= steps[part];
        double fd_a = (loss(a1, cb) - loss(a2, cb)) / (2 * eps);
        double fd_c = (loss(dA, c1) - loss(dA, c2)) / (2 * eps);
        double got_a = (part ? gAi[i] : gAr[i]) - 0.25, got_c = (part ? gCi[i] : gCr[i]) - 0.25;
        EXPECT_NEAR(got_a, fd_a, 1e-4 * (1 + std::abs(fd_a))) << "d dA[" << i << "]." << part;
        EXPECT_NEAR(got_c, fd_c, 1e-4 * (1 + std::abs(fd_c))) << "d CB[" << i << "]." << part;
      }
    }
  }
}
