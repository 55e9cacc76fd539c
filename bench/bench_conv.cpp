// bench_conv [--threads N] [--reps R] [--peak GFLOPS] [--quick] [--state-only | --no-state]
//            [--roofline]   (only the bounds of the h3 op at (8,768,1024), see roofline())
//            [--csv FILE]   (FILE: the H = 64 sweep as series,L,cpu ns per token, for
//                            scripts/plot_conv_sweep.py)
//
// Long causal convolutions on identical inputs, side by side:
//   naive  - hippo's direct O(L^2) reference (only where it takes under a few seconds),
//   fftw   - an FFTW3 (fp32) pipeline: r2c of the zero-padded input, complex product with the
//            kernel spectrum, c2r, D term and H3 products; FFTW_MEASURE plans made outside the
//            timing; the better of a batched plan_many (whole tensors) and a per-channel
//            variant (one padded row at a time, in cache),
//   hippo  - the fused FlashConv kernel.
// Ops: "conv" y = K*u + D u; "h3" y = q (K*(k v) + D k v); "h3 bwd" (hippo and naive only).
// Kernel spectra are computed inside every timed call for both FFTW and hippo.
// Nominal GFLOP/s: a real FFT of size n = 2L counts 2.5 n log2 n flops (half of the usual
// 5 n log2 n of a complex FFT of size n); a forward call does 2 B H + H such FFTs, a backward
// call (hippo) 4 B H + H + H (conv bwd: 2 fwd + 1 inv per row; h3 bwd: 2 fwd + 2 inv per row).
#include <fftw3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "core/cpu_peak.h"
#include "core/rng.h"
#include "core/threads.h"
#include "kernels/flashconv/flashconv.h"

using namespace hippo;

namespace {

struct Shape {
  int B, H, L;
};

using bench::cpu_now_ms;
using bench::Timing;
Timing median_ms(const std::function<void()>& f, int reps) { return bench::median_timing(f, reps); }

struct FftwBuf {
  float* p = nullptr;
  explicit FftwBuf(size_t n) : p(fftwf_alloc_real(n)) { std::memset(p, 0, n * sizeof(float)); }
  ~FftwBuf() { fftwf_free(p); }
};

int next_pow2(int x) {
  int n = 1;
  while (n < x) n *= 2;
  return n;
}

// The FFTW pipeline for y = q (K*w + D w) with w = k v (h3) or w = u, q = 1 (conv).
class FftwConv {
 public:
  FftwConv(int B, int H, int L, bool batched) : B_(B), H_(H), L_(L), batched_(batched) {
    n_ = std::max(2, next_pow2(2 * L));
    nc_ = n_ / 2 + 1;
    int rows = batched ? B * H : 1;
    in_ = fftwf_alloc_real(static_cast<size_t>(rows) * n_);
    spec_ = fftwf_alloc_complex(static_cast<size_t>(rows) * nc_);
    kin_ = fftwf_alloc_real(static_cast<size_t>(H) * n_);
    kspec_ = fftwf_alloc_complex(static_cast<size_t>(H) * nc_);
    int n[1] = {n_};
    kplan_ = fftwf_plan_many_dft_r2c(1, n, H, kin_, nullptr, 1, n_, kspec_, nullptr, 1, nc_,
                                     FFTW_MEASURE);
    fwd_ = fftwf_plan_many_dft_r2c(1, n, rows, in_, nullptr, 1, n_, spec_, nullptr, 1, nc_,
                                   FFTW_MEASURE);
    inv_ = fftwf_plan_many_dft_c2r(1, n, rows, spec_, nullptr, 1, nc_, in_, nullptr, 1, n_,
                                   FFTW_MEASURE);
    std::memset(in_, 0, sizeof(float) * rows * n_);
    std::memset(kin_, 0, sizeof(float) * H * n_);
  }
  ~FftwConv() {
    fftwf_destroy_plan(kplan_), fftwf_destroy_plan(fwd_), fftwf_destroy_plan(inv_);
    fftwf_free(in_), fftwf_free(spec_), fftwf_free(kin_), fftwf_free(kspec_);
  }

  // q == nullptr: plain conv of u = k (v ignored).
  void run(const float* q, const float* k, const float* v, const float* K, const float* D,
           float* y) {
    const float scale = 1.0f / static_cast<float>(n_);
    for (int h = 0; h < H_; ++h) {
      std::memcpy(kin_ + static_cast<size_t>(h) * n_, K + static_cast<size_t>(h) * L_,
                  sizeof(float) * L_);
      kin_[static_cast<size_t>(h) * n_] += D[h];  // K*w + D w = (K + D delta)*w
    }
    fftwf_execute(kplan_);
    if (batched_) {
      for (int r = 0; r < B_ * H_; ++r) load_row(r, in_ + static_cast<size_t>(r) * n_, k, v);
      fftwf_execute(fwd_);
      for (int r = 0; r < B_ * H_; ++r)
        multiply(spec_ + static_cast<size_t>(r) * nc_, kspec_ + static_cast<size_t>(r % H_) * nc_);
      fftwf_execute(inv_);
      for (int r = 0; r < B_ * H_; ++r) store_row(r, in_ + static_cast<size_t>(r) * n_, q, y, scale);
    } else {
      for (int r = 0; r < B_ * H_; ++r) {
        load_row(r, in_, k, v);
        fftwf_execute(fwd_);
        multiply(spec_, kspec_ + static_cast<size_t>(r % H_) * nc_);
        fftwf_execute(inv_);
        store_row(r, in_, q, y, scale);
      }
    }
  }

 private:
  void load_row(int r, float* dst, const float* k, const float* v) const {
    const float* kr = k + static_cast<size_t>(r) * L_;
    if (v) {
      const float* vr = v + static_cast<size_t>(r) * L_;
      for (int t = 0; t < L_; ++t) dst[t] = kr[t] * vr[t];
    } else {
      std::memcpy(dst, kr, sizeof(float) * L_);
    }
    std::memset(dst + L_, 0, sizeof(float) * (n_ - L_));  // c2r overwrote the padding
  }
  void multiply(fftwf_complex* x, const fftwf_complex* g) const {
    for (int i = 0; i < nc_; ++i) {
      float re = x[i][0] * g[i][0] - x[i][1] * g[i][1];
      float im = x[i][0] * g[i][1] + x[i][1] * g[i][0];
      x[i][0] = re, x[i][1] = im;
    }
  }
  void store_row(int r, const float* src, const float* q, float* y, float scale) const {
    float* yr = y + static_cast<size_t>(r) * L_;
    if (q) {
      const float* qr = q + static_cast<size_t>(r) * L_;
      for (int t = 0; t < L_; ++t) yr[t] = qr[t] * src[t] * scale;
    } else {
      for (int t = 0; t < L_; ++t) yr[t] = src[t] * scale;
    }
  }

  int B_, H_, L_, n_, nc_;
  bool batched_;
  float *in_, *kin_;
  fftwf_complex *spec_, *kspec_;
  fftwf_plan kplan_, fwd_, inv_;
};

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::abs(static_cast<double>(a[i]) - b[i]));
    den = std::max(den, std::abs(static_cast<double>(b[i])));
  }
  return num / den;
}

// The two bounds of the fused h3 forward at (B,H,L) = (8,768,1024), each measured here:
//  memory: the same bytes streamed by the simplest kernel that moves them, y = q k v (reads
//          three tensors, writes one), i.e. the time the op could take with free arithmetic;
//  compute: the op on a problem that stays in L2 (B = 4, H = 16: 1 MiB of tensors), at the
//          same L, i.e. the op's own arithmetic speed with free memory.
void roofline(int reps, double peak) {
  const int B = 8, H = 768, L = 1024;
  const size_t n = static_cast<size_t>(B) * H * L;
  Rng rng(3);
  std::vector<float> q(n), k(n), v(n), y(n), K(static_cast<size_t>(H) * L), D(H);
  for (auto* x : {&q, &k, &v, &K, &D})
    for (auto& e : *x) e = static_cast<float>(rng.normal());
  const double nfft = 2048, fft_flops = 2.5 * nfft * std::log2(nfft);
  auto gflop = [&](int b, int h) { return (2.0 * b * h + h) * fft_flops * 1e-9; };
  Timing mem = median_ms(
      [&] {
        const float *qp = q.data(), *kp = k.data(), *vp = v.data();
        float* yp = y.data();
        for (size_t i = 0; i < n; ++i) yp[i] = qp[i] * kp[i] * vp[i];
      },
      reps);
  Timing full = median_ms(
      [&] { flashconv_h3_fwd(q.data(), k.data(), v.data(), K.data(), D.data(), y.data(), B, H, L); },
      reps);
  const int Bc = 4, Hc = 16, inner = 50;
  Timing cache = median_ms(
      [&] {
        for (int i = 0; i < inner; ++i)
          flashconv_h3_fwd(q.data(), k.data(), v.data(), K.data(), D.data(), y.data(), Bc, Hc, L);
      },
      reps);
  const double comp_gfs = gflop(Bc, Hc) * inner / (cache.cpu_ms * 1e-3);
  const double t_comp = gflop(B, H) / comp_gfs * 1e3;
  const double bytes = 4.0 * n * 4 + 4.0 * H * L;  // q, k, v, y and K
  std::printf("roofline of the h3 op at (8,768,1024), cpu ms (median of %d):\n", reps);
  std::printf("  memory: y = q k v over the same tensors   %8.2f ms  (%.1f GB/s for %.0f MB)\n",
              mem.cpu_ms, bytes / (mem.cpu_ms * 1e-3) * 1e-9, bytes * 1e-6);
  std::printf("  compute: the op in L2 (4,16,1024) x %d     %8.2f GFLOP/s = %.1f%% of %.1f -> %.2f ms\n",
              inner, comp_gfs, 100 * comp_gfs / peak, peak, t_comp);
  std::printf("  bound max(memory, compute) %.2f ms, no-overlap sum %.2f ms; measured %.2f ms "
              "(%.1f GFLOP/s = %.1f%% of peak); measured / bound = %.2f\n",
              std::max(mem.cpu_ms, t_comp), mem.cpu_ms + t_comp, full.cpu_ms,
              gflop(B, H) / (full.cpu_ms * 1e-3), 100 * gflop(B, H) / (full.cpu_ms * 1e-3) / peak,
              full.cpu_ms / std::max(mem.cpu_ms, t_comp));
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 5;
  double peak_override = 0;
  bool quick = false, state_only = false, no_state = false, roofline = false;
  std::string csv_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--peak" && i + 1 < argc) peak_override = std::atof(argv[++i]);
    else if (a == "--quick") quick = true;
    else if (a == "--state-only") state_only = true;
    else if (a == "--no-state") no_state = true;
    else if (a == "--roofline") roofline = true;
    else if (a == "--csv" && i + 1 < argc) csv_path = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_conv [--threads N] [--reps R] [--peak GFLOPS] [--quick] "
                           "[--state-only | --no-state] [--csv FILE] [--roofline]\n");
      return 2;
    }
  }
  set_num_threads(threads);
  FILE* csv = csv_path.empty() ? nullptr : std::fopen(csv_path.c_str(), "w");
  if (csv) std::fprintf(csv, "series,L,ns_per_token\n");
  // The measured peak drops when other jobs share the core; --peak fixes the reference.
  CpuPeak peak = measure_fma_peak();
  std::printf("FlashConv benchmark: threads %d, fp32 FMA peak %.1f GFLOP/s/core (%s, measured now)",
              threads, peak.gflops, peak.isa.c_str());
  if (peak_override > 0) {
    std::printf(", %% peak below against --peak %.1f", peak_override);
    peak.gflops = peak_override;
  }
  std::printf("; hippo path %s, median of %d reps\n", isa_name(flashconv_engine_isa(active_isa())),
              reps);
  if (roofline) {
    ::roofline(reps, peak.gflops);
    return 0;
  }
  std::printf("GFLOP/s convention: real FFT of n = 2L points = 2.5 n log2 n flops; "
              "fwd = (2BH + H) FFTs, bwd = (4BH + H) FFTs\n\n");
  std::printf("%-16s %-7s %-6s %10s %10s %8s %8s %8s  %s\n", "B,H,L", "op", "impl", "wall ms",
              "cpu ms", "vs fftw", "GFLOP/s", "% peak", "rel err vs hippo");

  std::vector<Shape> shapes = {{1, 768, 1024}, {8, 768, 1024}, {1, 768, 8192}, {4, 256, 4096},
                               {1, 64, 65536}};
  for (int L = 256; L <= 32768; L *= 2) shapes.push_back({1, 64, L});
  if (quick) shapes = {{1, 768, 1024}, {8, 768, 1024}};
  if (state_only) shapes.clear();

  Rng rng(1);
  for (const Shape& s : shapes) {
    size_t n = static_cast<size_t>(s.B) * s.H * s.L;
    std::vector<float> q(n), k(n), v(n), dy(n), K(static_cast<size_t>(s.H) * s.L), D(s.H);
    for (auto* x : {&q, &k, &v, &dy})
      for (auto& e : *x) e = static_cast<float>(rng.normal());
    for (int h = 0; h < s.H; ++h)
      for (int l = 0; l < s.L; ++l)
        K[static_cast<size_t>(h) * s.L + l] = static_cast<float>(rng.normal() * std::exp(-l / 64.0));
    for (auto& e : D) e = static_cast<float>(rng.normal());
    std::vector<float> yh(n), yf(n), yn(n);
    int nfft = std::max(2, next_pow2(2 * s.L));
    double fft_flops = 2.5 * nfft * std::log2(nfft);
    double fwd_gflop = (2.0 * s.B * s.H + s.H) * fft_flops * 1e-9;
    double bwd_gflop = (4.0 * s.B * s.H + s.H) * fft_flops * 1e-9;
    bool naive_ok = static_cast<double>(s.B) * s.H * s.L * s.L < 1.2e9;
    int r = (n > (1u << 23)) ? std::max(3, reps / 2) : reps;
    char shape[32];
    std::snprintf(shape, sizeof shape, "%d,%d,%d", s.B, s.H, s.L);

    // Ratios and GFLOP/s use CPU time (see median_ms).
    auto row = [&](const char* op, const char* impl, Timing t, Timing fftw, double gflop,
                   double err) {
      char ratio[32] = "", errs[32] = "";
      if (fftw.cpu_ms > 0) std::snprintf(ratio, sizeof ratio, "%.2fx", fftw.cpu_ms / t.cpu_ms);
      if (err >= 0) std::snprintf(errs, sizeof errs, "%.1e", err);
      double gf = gflop / (t.cpu_ms * 1e-3);
      if (csv && s.B == 1 && s.H == 64 && std::string(op) != "h3 bwd")
        std::fprintf(csv, "%s %s,%d,%.3f\n", impl, op, s.L, t.cpu_ms * 1e6 / s.L);
      std::printf("%-16s %-7s %-6s %10.3f %10.3f %8s %8.1f %7.1f%%  %s\n", shape, op, impl,
                  t.wall_ms, t.cpu_ms, ratio, gf, 100.0 * gf / (peak.gflops * threads), errs);
    };

    for (bool h3 : {false, true}) {
      const char* op = h3 ? "h3" : "conv";
      const float* qq = h3 ? q.data() : nullptr;
      const float* vv = h3 ? v.data() : nullptr;
      Timing fftw_t{1e30, 1e30};
      for (bool batched : {true, false}) {
        FftwConv f(s.B, s.H, s.L, batched);
        Timing t = median_ms([&] { f.run(qq, k.data(), vv, K.data(), D.data(), yf.data()); }, r);
        if (t.cpu_ms < fftw_t.cpu_ms) fftw_t = t;
      }
      Timing hippo_t = median_ms(
          [&] {
            if (h3)
              flashconv_h3_fwd(q.data(), k.data(), v.data(), K.data(), D.data(), yh.data(), s.B,
                               s.H, s.L);
            else
              flashconv_fwd(k.data(), K.data(), D.data(), yh.data(), s.B, s.H, s.L);
          },
          r);
      if (naive_ok) {
        auto t0 = std::chrono::steady_clock::now();
        double c0 = cpu_now_ms();
        if (h3)
          flashconv_ref_h3_fwd(q.data(), k.data(), v.data(), K.data(), D.data(), yn.data(), s.B,
                               s.H, s.L);
        else
          flashconv_ref_fwd(k.data(), K.data(), D.data(), yn.data(), s.B, s.H, s.L);
        Timing t{std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                     .count(),
                 cpu_now_ms() - c0};
        row(op, "naive", t, fftw_t, fwd_gflop, rel_err(yn, yh));
      }
      row(op, "fftw", fftw_t, fftw_t, fwd_gflop, rel_err(yf, yh));
      row(op, "hippo", hippo_t, fftw_t, fwd_gflop, -1);
    }
    {
      std::vector<float> dq(n), dk(n), dvv(n), dK(K.size()), dD(s.H);
      Timing t = median_ms(
          [&] {
            flashconv_h3_bwd(q.data(), k.data(), v.data(), K.data(), D.data(), dy.data(), dq.data(),
                             dk.data(), dvv.data(), dK.data(), dD.data(), s.B, s.H, s.L);
          },
          r);
      row("h3 bwd", "hippo", t, Timing{-1, -1}, bwd_gflop, -1);
    }
    std::fflush(stdout);
  }

  // State passing (spec §7): the diagonal SSM convolution from its parameters (dA, C dB) over
  // L = 4096 ... 1,048,576 at B = 1, H = 64, M = 32, chunk length T. Each call includes the
  // kernel K[:T] made from the parameters. Time per token (all 64 channels) against L = 4096;
  // for L <= 65536 also the relative difference to one FFT over the whole sequence with the
  // SSM's kernel (made outside the timing), whose time is printed as "one FFT".
  if (!no_state) {
    const int B = 1, H = 64, M = 32;
    const int Lmax = quick ? 65536 : (1 << 20);
    std::vector<float> dAr(H * M), dAi(H * M), CBr(H * M), CBi(H * M), D(H);
    for (int h = 0; h < H; ++h)
      for (int m = 0; m < M; ++m) {  // bilinear S4D-Lin with dt = 0.01
        double dt = 0.01, ar = -0.5, ai = 3.14159265358979 * m;
        double nr = 1 + dt * ar / 2, ni = dt * ai / 2, dr = 1 - dt * ar / 2, di = -dt * ai / 2;
        double den = dr * dr + di * di;
        dAr[h * M + m] = static_cast<float>((nr * dr + ni * di) / den);
        dAi[h * M + m] = static_cast<float>((ni * dr - nr * di) / den);
        CBr[h * M + m] = static_cast<float>(rng.normal() * dt * dr / den);
        CBi[h * M + m] = static_cast<float>(rng.normal() * dt * -di / den);
      }
    for (auto& e : D) e = static_cast<float>(rng.normal());
    DiagSsmDiscrete ssm{dAr.data(), dAi.data(), CBr.data(), CBi.data(), M};
    const size_t nmax = static_cast<size_t>(B) * H * Lmax;
    std::vector<float> u(nmax), y(nmax), du(nmax);
    for (auto& e : u) e = static_cast<float>(rng.normal());
    const int Ts[] = {512, 1024, 4096};
    std::printf("\nstate passing sweep, B = %d, H = %d, M = %d: cpu ms per call (ns per token) "
                "for chunk length T; ratio = ns/token / that at L = 4096 with the same T\n",
                B, H, M);
    std::printf("%9s %20s %20s %20s %8s %8s %8s %20s %18s %9s\n", "L", "T=512", "T=1024",
                "T=4096", "ratio", "ratio", "ratio", "bwd T=512", "one FFT ms (ns/t)",
                "rel err");
    double base[3] = {0, 0, 0};
    for (int L = 4096; L <= Lmax; L *= 4) {
      const int r = L >= (1 << 18) ? 3 : 5;
      double per[3];
      std::printf("%9d", L);
      for (int i = 0; i < 3; ++i) {
        Timing t = median_ms(
            [&] { flashconv_ssm_fwd(u.data(), ssm, D.data(), y.data(), B, H, L, Ts[i]); }, r);
        per[i] = t.cpu_ms * 1e6 / L;
        if (L == 4096) base[i] = per[i];
        std::printf(" %10.2f (%7.1f)", t.cpu_ms, per[i]);
        if (csv) std::fprintf(csv, "state passing T=%d,%d,%.3f\n", Ts[i], L, per[i]);
      }
      for (int i = 0; i < 3; ++i) std::printf(" %7.2fx", per[i] / base[i]);
      {  // backward (du, dD and the SSM parameter gradients) with T = 512
        std::vector<float> gAr(H * M), gAi(H * M), gCr(H * M), gCi(H * M), dD(H);
        DiagSsmDiscreteGrad g{gAr.data(), gAi.data(), gCr.data(), gCi.data()};
        Timing t = median_ms(
            [&] {
              flashconv_ssm_bwd(u.data(), ssm, D.data(), u.data(), du.data(), dD.data(), g, B, H,
                                L, 512);
            },
            r);
        std::printf(" %10.2f (%7.1f)", t.cpu_ms, t.cpu_ms * 1e6 / L);
        if (csv) std::fprintf(csv, "state passing bwd T=512,%d,%.3f\n", L, t.cpu_ms * 1e6 / L);
      }
      if (L <= 65536) {
        const size_t n = static_cast<size_t>(B) * H * L;
        std::vector<float> K(static_cast<size_t>(H) * L), y1(n), y2(y.begin(), y.begin() + n);
        diag_ssm_kernel(ssm, H, L, K.data());
        Timing full = median_ms(
            [&] { flashconv_fwd(u.data(), K.data(), D.data(), y1.data(), B, H, L); }, 3);
        std::printf(" %8.2f (%7.1f) %9.1e", full.cpu_ms, full.cpu_ms * 1e6 / L, rel_err(y2, y1));
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  if (csv) std::fclose(csv);
  return 0;
}
