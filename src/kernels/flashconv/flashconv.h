// FlashConv on the CPU: fused FFT long convolutions for the H3 layer (spec §1, §3, §7).
//
// Layout everywhere: activations (B, H, L) channel-major with the sequence contiguous;
// kernels K (H, L); skip D (H) or nullptr. Convolutions are causal:
//   (K * u)[t] = sum_{s<=t} K[t-s] u[s].
// Each call computes the kernel spectrum once per channel and shares it across the batch;
// every (batch, channel) runs its FFT, product and inverse FFT in one pass while it sits in
// cache. Threads: OpenMP over groups of channels (hippo::set_num_threads).
#pragma once
#include "core/cpu_features.h"

namespace hippo {

// y = K * u + D ⊙ u.
void flashconv_fwd(const float* u, const float* K, const float* D, float* y, int B, int H, int L);
// du is overwritten; dK (H, L) and dD (H) are accumulated (+=). dD may be nullptr (then D
// must be nullptr too).
void flashconv_bwd(const float* u, const float* K, const float* D, const float* dy, float* du,
                   float* dK, float* dD, int B, int H, int L);

// The H3 inner op: y = q ⊙ (K * (k ⊙ v) + D ⊙ (k ⊙ v)).
void flashconv_h3_fwd(const float* q, const float* k, const float* v, const float* K,
                      const float* D, float* y, int B, int H, int L);
// dq, dk, dv overwritten; dK, dD accumulated (+=).
void flashconv_h3_bwd(const float* q, const float* k, const float* v, const float* K,
                      const float* D, const float* dy, float* dq, float* dk, float* dv, float* dK,
                      float* dD, int B, int H, int L);

// Plain reference path (direct O(L^2) convolution, double accumulation). Same contracts as
// the fast functions above; tests and benchmarks hold the two equal.
void flashconv_ref_fwd(const float* u, const float* K, const float* D, float* y, int B, int H,
                       int L);
void flashconv_ref_bwd(const float* u, const float* K, const float* D, const float* dy, float* du,
                       float* dK, float* dD, int B, int H, int L);
void flashconv_ref_h3_fwd(const float* q, const float* k, const float* v, const float* K,
                          const float* D, float* y, int B, int H, int L);
void flashconv_ref_h3_bwd(const float* q, const float* k, const float* v, const float* K,
                          const float* D, const float* dy, float* dq, float* dk, float* dv,
                          float* dK, float* dD, int B, int H, int L);

// Instruction-set path of the fast kernels: the engine of the widest lanes active_isa()
// (core/cpu_features.h) allows, avx512 (16 lanes), avx2 (8) or scalar. Tests and benchmarks
// force a path with set_isa_override / ScopedIsa to hold them equal.
// The engine level that runs at `level` (Avx512Bf16 runs the Avx512 engine).
Isa flashconv_engine_isa(Isa level);

// ---- State passing (spec §7) for sequences longer than one cache-sized chunk ----

// A diagonal SSM in discretised form: per channel h and mode n < M, the complex dA[h,n] and
// the product CB[h,n] = C[h,n] * dB[h,n], each stored as separate real/imag (H, M) arrays.
// Its kernel is K[h,l] = 2 Re(sum_n CB[h,n] dA[h,n]^l).
struct DiagSsmDiscrete {
  const float* dA_re = nullptr;
  const float* dA_im = nullptr;
  const float* CB_re = nullptr;
  const float* CB_im = nullptr;
  int M = 0;
};

// K (H, L) from the SSM, computed in double precision.
void diag_ssm_kernel(const DiagSsmDiscrete& ssm, int H, int L, float* K);

// y = K * u + D ⊙ u with K the SSM's kernel, computed chunk by chunk (chunk length T,
// any T >= 1; powers of two are fastest) carrying the SSM state between chunks; no limit on
// L and memory O(T) per channel. Equal to flashconv_fwd(u, diag_ssm_kernel(L), D) up to fp32
// rounding.
void flashconv_ssm_fwd(const float* u, const DiagSsmDiscrete& ssm, const float* D, float* y, int B,
                       int H, int L, int T);

// Gradients of flashconv_ssm_fwd's output w.r.t. the discretised SSM (real gradients of the
// re/im parts), accumulated (+=); any pointer may be nullptr.
struct DiagSsmDiscreteGrad {
  float* dA_re = nullptr;
  float* dA_im = nullptr;
  float* CB_re = nullptr;
  float* CB_im = nullptr;
};

// Backward of flashconv_ssm_fwd: du overwritten (chunked like the forward, run backwards in
// time); dD (H) and grad accumulated (+=), from an O(L M) scan of the SSM state and its
// derivative in double precision, so no length-L kernel gradient is ever formed. dD may be
// nullptr.
void flashconv_ssm_bwd(const float* u, const DiagSsmDiscrete& ssm, const float* D, const float* dy,
                       float* du, float* dD, const DiagSsmDiscreteGrad& grad, int B, int H, int L,
                       int T);

}  // namespace hippo
