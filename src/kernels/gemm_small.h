// y = x W^T for a few rows of x (decoding: one row per sequence of the batch), W (out, in)
// row-major fp32 as in PyTorch's Linear. The product is bound by reading W from memory, so the
// kernel streams every weight exactly once for all rows, with the rows' activations held in
// L1/L2. oneDNN's sgemm read the weights of these shapes at 21-24 GB/s at one row and 7-14 at
// eight, this kernel at 29-30 and 14-20 (bench/bench_gemm_bf16.cpp, 1 thread; docs/performance.md).
#pragma once
#include <cstdint>

#include "core/weight.h"

namespace hippo {

// Largest rows count the small-rows kernel takes; gemm() routes more rows to oneDNN.
constexpr int64_t kSmallRowsMax = 16;

// True where active_isa() (core/cpu_features.h) enables the AVX-512 instructions the kernel
// needs (else callers use gemm()).
bool small_rows_kernel_available();

// The spread layout for 5-8 rows of fp32 weights with at most 1024 inputs (on by default):
// each tile reads 8 weight rows far apart instead of 2 adjacent ones, which streams the
// weights faster (gemm_small.cpp). Off, the kernel uses adjacent 8 x 2 tiles; the results are
// the same bit for bit. Process-wide; for tests and A/B benchmarks.
void set_small_rows_spread(bool on);
bool small_rows_spread();
// Whether gemm_small_nt takes the spread layout for M rows, K inputs and weights B, ldb: 5-8
// rows, K <= 1024, B and its rows 64-byte aligned, the layout on.
bool small_rows_spread_for(int64_t M, int64_t K, const float* B, int64_t ldb);

// C = alpha A B^T + beta C, A (M x K), B (N x K), C (M x N) row-major with leading dimensions
// lda, ldb, ldc; M <= kSmallRowsMax. C is not read when beta is 0. Threads split the outputs
// when there is enough work (kernels/parallel_work.h).
void gemm_small_nt(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The same for outputs [begin, end) only (columns of C), on the calling thread: no fork, so
// that threads already inside one parallel region (a whole decoding step) can each take a
// range. Any split of [0, N) into ranges gives what gemm_small_nt gives, bit for bit.
void gemm_small_nt_part(int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                        int64_t ldc, int64_t begin, int64_t end);

// The same with B in bf16 (N x K, rows ldw apart; alpha 1; any M, taken 16 rows at a time; the
// first W.rows8 rows may be in the Rows8 order of core/weight.h, then K % 32 == 0 and ldw == K,
// with the same result bit for bit): A given as `xs`, each row split
// per 32 inputs into its 16 even then 16 odd elements, zero padded, rows ldxs floats apart
// (ldxs a multiple of 32, at least K). The weights are widened exactly (a 16-bit shift), so
// the result is the fp32 product with the bf16 weights. Used by kernels/gemm_bf16.cpp.
void gemm_small_nt_bf16_split(int64_t M, int64_t N, int64_t K, const float* xs, int64_t ldxs,
                              Bf16Data W, int64_t ldw, float beta, float* C,
                              int64_t ldc);

// The same with the activations already rounded to bf16 (`xb`, rows ldxb apart), multiplied by
// VDPBF16PS with fp32 sums: the fast bf16 mode of kernels/gemm_bf16.h. Needs the Avx512Bf16
// level enabled.
bool small_rows_bf16_dot_available();
void gemm_small_nt_bf16_dot(int64_t M, int64_t N, int64_t K, const uint16_t* xb, int64_t ldxb,
                            Bf16Data W, int64_t ldw, float beta, float* C, int64_t ldc);

// The same with x split into two bf16 parts (x = hi + lo, ~2^-17 relative) and VDPBF16PS:
// `xs` holds per 32 inputs their 32 hi then 32 lo bf16 values (the room of 32 floats), rows
// ldxs floats apart (a multiple of 32, at least K). Needs AVX512_BF16.
void gemm_small_nt_bf16_hilo(int64_t M, int64_t N, int64_t K, const float* xs, int64_t ldxs,
                             Bf16Data W, int64_t ldw, float beta, float* C, int64_t ldc);

// The three bf16 products above for outputs [begin, end) only, on the calling thread (no fork):
// any split of [0, N) gives the whole call's result bit for bit. M <= kSmallRowsMax.
void gemm_small_nt_bf16_split_part(int64_t M, int64_t N, int64_t K, const float* xs,
                                   int64_t ldxs, Bf16Data W, int64_t ldw, float beta,
                                   float* C, int64_t ldc, int64_t begin, int64_t end);
void gemm_small_nt_bf16_dot_part(int64_t M, int64_t N, int64_t K, const uint16_t* xb,
                                 int64_t ldxb, Bf16Data W, int64_t ldw, float beta,
                                 float* C, int64_t ldc, int64_t begin, int64_t end);
void gemm_small_nt_bf16_hilo_part(int64_t M, int64_t N, int64_t K, const float* xs,
                                  int64_t ldxs, Bf16Data W, int64_t ldw, float beta,
                                  float* C, int64_t ldc, int64_t begin, int64_t end);

// y = x W^T (y += x W^T when accumulate); x (rows, in), y (rows, out), rows <= kSmallRowsMax.
void matmul_xwt_small(const float* x, const float* W, float* y, int64_t rows, int64_t in,
                      int64_t out, bool accumulate);

}  // namespace hippo
