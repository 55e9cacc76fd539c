// The one CPU-feature probe every kernel dispatches on. Kernels with instruction-set specific
// paths compile them with __attribute__((target(...))) or `#pragma GCC target` and pick one at
// run time from active_isa(), so a binary built for baseline x86-64 (-DHIPPO_NATIVE=OFF) still
// runs the AVX-512 kernels where the CPU has them. The scalar path of each kernel stays beside
// its fast paths as the reference (tests/dispatch_test.cpp forces every level).
#pragma once
#include <optional>
#include <string>
#include <string_view>

// Target attributes of the levels' paths. A portable loop written once as an always_inline
// function and called from one function per attribute is compiled (vectorised) once per level.
#define HIPPO_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define HIPPO_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))

namespace hippo {

// What the CPU (and the operating system, which must save the wider registers) supports.
struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool avx512_bf16 = false, avx512_vnni = false;
  bool avx_vnni = false;  // VEX-encoded VPDPBUSD on 256-bit registers (AVX-VNNI)
};
// Probed once (cpuid through __builtin_cpu_supports, which also checks the OS state by xgetbv).
const CpuFeatures& cpu_features_detected();

// Instruction-set levels the kernels have paths for, each including the ones below:
//   Avx2        AVX2 + FMA
//   Avx512      AVX-512 F, BW, DQ, VL (and AVX2 + FMA)
//   Avx512Bf16  Avx512 + AVX512_BF16 (VDPBF16PS)
enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2, Avx512Bf16 = 3 };

// The highest level this CPU has.
Isa detected_isa();
// The level kernels use: detected_isa(), lowered by the override (HIPPO_ISA or set_isa_override).
Isa active_isa();
inline bool isa_enabled(Isa level) { return static_cast<int>(active_isa()) >= static_cast<int>(level); }

// Caps the level kernels use at `level` (never above detected_isa()): for tests that force each
// path, and for users comparing paths. The environment variable HIPPO_ISA
// (scalar | avx2 | avx512 | avx512_bf16) sets the initial cap. Set it only while no kernel runs.
void set_isa_override(Isa level);
void clear_isa_override();  // back to HIPPO_ISA, or no cap

const char* isa_name(Isa level);
std::optional<Isa> parse_isa(std::string_view name);

// One line: the detected features, the detected level and the level in use.
std::string cpu_features_summary();

// Sets the override for one scope and restores the previous cap after it (tests).
class ScopedIsa {
 public:
  explicit ScopedIsa(Isa level);
  ~ScopedIsa();
  ScopedIsa(const ScopedIsa&) = delete;
  ScopedIsa& operator=(const ScopedIsa&) = delete;

 private:
  int previous_;
};

}  // namespace hippo
