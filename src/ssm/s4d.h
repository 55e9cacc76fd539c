// The diagonal SSM (S4D) of spec §1: parameters, discretisation, convolution kernel and its
// gradient, and the recurrent view (step, state after a prompt). The skip D lives in the layer.
//
// Parameter layout (spec §5), H channels, M = N/2 complex modes:
//   log_dt (H), inv_A_real (H,M), A_imag (H,M), B (H,M,2), C (1,H,M,2) as (re, im) pairs.
#pragma once
#include <complex>
#include <memory>
#include <mutex>
#include <vector>

#include "core/cpu_features.h"
#include "core/param.h"
#include "core/rng.h"

namespace hippo {

enum class Discretization { Bilinear, ZOH };
enum class S4DInit { Lin, Inv };

// S4DStepParams::step on raw arrays (s4d.cpp); a, b, c, s: M (re, im) pairs. Picks the AVX-512
// path (M a multiple of 8), the AVX2 build of the portable loop or the portable loop itself
// from active_isa() (core/cpu_features.h).
float s4d_step(const float* a, const float* b, const float* c, float* s, float u, int M);

// s4d_step over n consecutive channels, the path picked once: channel i's a, b, c at
// a + 2 i M (and so on) and its state at s + 2 i M, y[i] = s4d_step(..., u[i], M) + d[i] u[i]
// (d null: no skip term). y may be u. One call per channel was a tenth of the decode step's
// diagonal SSM time (shift_step_channels).
void s4d_step_channels(const float* a, const float* b, const float* c, float* s, const float* u,
                       const float* d, float* y, int64_t n, int M);

// The discretised dynamics the recurrent step uses, in single precision: dA, dB and C of every
// mode of every channel, made from one snapshot of the parameter values. Immutable once made,
// so that states stepped on several threads can share one (S4DKernel::step_params()).
struct S4DStepParams {
  using cf = std::complex<float>;
  int H = 0, M = 0;
  std::vector<cf> dA, dB, C;  // (H, M)
  std::vector<float> source;  // the values they were made from: log_dt, inv_A_real, A_imag, B, C

  // One recurrent step of channel h: x <- dA x + dB u, returns 2 Re(sum_n C_n x_n) (without D).
  // x: M complex values. Runs on the (re, im) float pairs (s4d_step).
  float step(int h, cf* x, float u) const {
    const size_t off = static_cast<size_t>(h) * M;
    const float* a = reinterpret_cast<const float*>(dA.data() + off);
    const float* b = reinterpret_cast<const float*>(dB.data() + off);
    const float* c = reinterpret_cast<const float*>(C.data() + off);
    float* s = reinterpret_cast<float*>(x);
    return s4d_step(a, b, c, s, u, M);
  }
  // step() of channels h0 .. h0 + n - 1 (states M apart from x), with the skip term d[i] u[i]
  // added where d is not null; y may be u (s4d_step_channels).
  void step_channels(int h0, int64_t n, cf* x, const float* u, const float* d, float* y) const {
    const size_t off = static_cast<size_t>(h0) * M;
    s4d_step_channels(reinterpret_cast<const float*>(dA.data() + off),
                      reinterpret_cast<const float*>(dB.data() + off),
                      reinterpret_cast<const float*>(C.data() + off), reinterpret_cast<float*>(x),
                      u, d, y, n, M);
  }
  // The same step with std::complex arithmetic: the plain path tests hold step() to.
  float step_reference(int h, cf* x, float u) const {
    const size_t off = static_cast<size_t>(h) * M;
    const cf* a = dA.data() + off;
    const cf* b = dB.data() + off;
    const cf* c = C.data() + off;
    float y = 0.0f;
    for (int n = 0; n < M; ++n) {
      x[n] = a[n] * x[n] + b[n] * u;
      y += c[n].real() * x[n].real() - c[n].imag() * x[n].imag();
    }
    return 2.0f * y;
  }
};

class S4DKernel : public Module {
 public:
  using cd = std::complex<double>;
  using cf = std::complex<float>;

  // N is the state size; M = N/2 complex modes per channel (N must be even).
  S4DKernel(int H, int N, Discretization disc = Discretization::Bilinear);

  // Names "log_dt", "inv_A_real", "A_imag", "B", "C" after `prefix`
  // (the layers pass "kernel.kernel.").
  void collect_params(const std::string& prefix, ParamList& out) override;

  // S4D-Lin: A_n = -0.5 + i*pi*n; S4D-Inv: A_n = -0.5 + i*(N/pi)*(N/(2n+1) - 1).
  // B = 1, C complex standard normal (re, im ~ N(0, 1/2)), log_dt ~ U[ln 0.001, ln 0.1].
  void init(Rng& rng, S4DInit kind = S4DInit::Lin);

  // Recomputes dA, dB (and the complex C) from the current parameter values. Every method
  // below that needs them calls it or says it relies on it.
  void discretize();

  // Discretised dynamics of channel h (M values each), valid after discretize().
  const cd* dA(int h) const { return dA_.data() + static_cast<size_t>(h) * M_; }
  const cd* dB(int h) const { return dB_.data() + static_cast<size_t>(h) * M_; }
  const cd* C_complex(int h) const { return C_.data() + static_cast<size_t>(h) * M_; }
  // Single-precision copies for the recurrent step.
  const cf* dA_f(int h) const { return step_.dA.data() + static_cast<size_t>(h) * M_; }
  const cf* dB_f(int h) const { return step_.dB.data() + static_cast<size_t>(h) * M_; }
  const cf* C_f(int h) const { return step_.C.data() + static_cast<size_t>(h) * M_; }

  // The discretised dynamics in double of the current parameter values (what discretize()
  // writes into the kernel), for callers that must not write the kernel: const prefill.
  struct Discrete {
    std::vector<cd> dA, dB, C;  // (H, M)
  };
  Discrete discretized() const;
  // kernel() and prompt_state() on such a snapshot; same arithmetic, same results.
  void kernel(const Discrete& dyn, float* K, int L) const;
  void prompt_state(const Discrete& dyn, int h, const float* u, int L, cf* x) const;
  // advance_state() on such a snapshot: x <- dA^L x + sum_l dA^(L-1-l) dB u_l (double inside).
  void advance_state(const Discrete& dyn, int h, const float* u, int L, cf* x) const;
  // advance_state in blocks of kAdvanceTableBlock tokens (prefill of long chunks): within a
  // block, sum_j dA^(T-1-j) dB u_j is a float matrix-vector product with a table of the powers
  // (made in double, rounded once), and only the block's sum enters the double recurrence
  // (x <- dA^T x + block sum), so a token costs 2M float multiply-adds instead of the Horner
  // step's dependent complex double ones (4.5% of a 512-token 125M H3 prefill). The first
  // L mod T tokens go through advance_state. Tested against advance_state_reference.
  static constexpr int kAdvanceTableBlock = 64;
  struct AdvanceTable {   // of one head
    std::vector<float> W;  // (T, 2M): row j holds Re then Im of dA_n^(T-1-j) dB_n
    std::vector<cd> dAT;   // (M): dA^T
  };
  // Made per head and call (T x M complex steps, the modes side by side so that they
  // vectorise) rather than kept: all heads' tables are 12.6 MB per layer at d 768, 151 MB for the 125M
  // shape, which the constant-memory target has no room for.
  void advance_table(const Discrete& dyn, int h, AdvanceTable& table) const;
  void advance_state_blocked(const Discrete& dyn, const AdvanceTable& table, int h,
                             const float* u, int L, cf* x) const;
  // What states x (H, M) held before a sequence contribute to its outputs (spec §7, state
  // passing): y[h, j] = 2 Re(sum_n C_n dA_n^(j+1) x_n), j < L; y (H, L) overwritten. The
  // kernel() evaluation with C dB replaced by C dA x, so O(H M L) like the kernel itself.
  void state_output(const Discrete& dyn, const cf* x, float* y, int L) const;

  // K[h,l] = 2 Re(sum_n C dB dA^l), l < L. K: (H, L). Calls discretize().
  // In chunks of kKernelChunk positions, K[cT + j] = 2 Re(sum_n (W_n dA_n^(cT)) dA_n^j) with
  // W = C dB: the powers within a chunk and the chunk starts come from recurrences in double,
  // and the sum over modes is a float matrix product (about 2x faster than kernel_reference
  // at L = 2048).
  void kernel(float* K, int L);
  // The plain path kernel() is tested against: the running power dA^l in double for every l.
  void kernel_reference(float* K, int L);
  static constexpr int kKernelChunk = 64;
  // Adds dLoss/dparam for every dynamics parameter and C, given dK = dLoss/dK (H, L).
  // Uses the parameter values of the last kernel() call's discretize().
  void kernel_backward(const float* dK, int L);

  // One recurrent step of channel h (relies on discretize()), see S4DStepParams::step.
  float step(int h, cf* x, float u) const { return step_.step(h, x, u); }
  float step_reference(int h, cf* x, float u) const { return step_.step_reference(h, x, u); }

  // The step dynamics of the current parameter values, for recurrent states to hold. Safe to
  // call from several threads and does not touch what discretize() writes: consecutive calls
  // with unchanged values share one object (kept under a mutex, compared value by value), and a
  // call after the values changed makes a new one (states holding the old one keep it).
  std::shared_ptr<const S4DStepParams> step_params() const;

  // State of channel h after the prompt u[0..L) from the zero state (relies on discretize()):
  // x = sum_l dA^(L-1-l) dB u_l, accumulated in double. x: M complex values (overwritten).
  void prompt_state(int h, const float* u, int L, cf* x) const;
  // The same from the state x already held (spec §1, §7): x <- dA^L x + sum_l dA^(L-1-l) dB u_l.
  // The Horner recurrence in double, run on all modes at once (structure of arrays) so that
  // the M independent chains fill the vector units instead of waiting on one another.
  void advance_state(int h, const float* u, int L, cf* x) const;
  // The plain path advance_state is tested against: one mode at a time, std::complex<double>.
  void advance_state_reference(int h, const float* u, int L, cf* x) const;

  int H() const { return H_; }
  int M() const { return M_; }
  int N() const { return 2 * M_; }
  Discretization discretization() const { return disc_; }

  Param log_dt, inv_A_real, A_imag, B, C;

 private:
  int H_, M_;
  Discretization disc_;
  std::vector<double> dt_;           // (H)
  std::vector<cd> A_, Bc_, dA_, dB_, C_;  // (H, M)
  S4DStepParams step_;  // float copies of dA_, dB_, C_ (without `source`), for step()
  std::vector<double> work_;  // (H, 8, M): per-channel scratch of kernel() and kernel_backward()

  void kernel_from(const cd* dA, const cd* dB, const cd* C, float* K, int L) const;
  void advance_from(const cd* dA, const cd* dB, int h, const float* u, int L, cf* x) const;
  // Discretisation of mode i (of channel i / M) with step dt; writes the continuous A and B too.
  void discretize_mode(size_t i, double dt, cd& A, cd& Bn, cd& dA, cd& dB) const;
  // The parameter values in S4DStepParams::source order.
  std::vector<float> param_values() const;
  mutable std::mutex step_mutex_;  // guards step_cache_ (step_params() is called by threads)
  mutable std::shared_ptr<const S4DStepParams> step_cache_;
};

}  // namespace hippo
