// The VNNI decoding kernels behind q8_dot_rows (kernels/gemm_q8.h), one per instruction set:
//   avx512: AVX512-VNNI, 64-byte chunks (two blocks of 32) on 512-bit registers
//   avx256: AVX-VNNI (VEX), 32-byte chunks (one block) on 256-bit registers, for CPUs with
//           AVX-VNNI but no AVX-512 (and, on CPUs with both, when HIPPO_ISA caps at avx2)
// Same contract as q8_dot_rows: outputs [o0, o1) of y (row stride ldy), accumulate or not, no
// parallel region. The caller checks the CPU has the instructions.
//
// How both work. VPDPBUSD multiplies unsigned bytes by signed bytes, four products per int32
// lane. W's bytes are made unsigned by XOR 0x80 (w + 128, exact for every int8), x stays
// signed, and each lane's accumulator starts at -128 * (sum of its 4 x bytes), prepared once
// per call, so each lane ends at exactly sum w * x (int32; |sum| < 2^18). The lanes of a block
// are converted to fp32 and multiplied by that block's s_w * s_x, accumulated in fp32 per
// lane; at the end the lanes are summed. Four output rows go together: they share the loads
// of x and its per-chunk data, their loads of W are four independent streams, and their four
// lane sums are reduced by one transposing tree (a lone row takes the same tree with three
// zero rows, so an output's bits do not depend on how [o0, o1) was split).
#pragma once
#include <cstdint>

#include "core/weight.h"

namespace hippo::q8_vnni {

void dot_rows_avx512(const int8_t* xq, const float* xs, int64_t rows, const WeightView& W,
                     float* y, int64_t ldy, int64_t o0, int64_t o1, bool accumulate);
void dot_rows_avx256(const int8_t* xq, const float* xs, int64_t rows, const WeightView& W,
                     float* y, int64_t ldy, int64_t o0, int64_t o1, bool accumulate);

}  // namespace hippo::q8_vnni
