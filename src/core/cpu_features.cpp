#include "core/cpu_features.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "core/error.h"

namespace hippo {

namespace {

CpuFeatures probe() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  // clang 14 (the fuzz build) has no "f16c" in __builtin_cpu_supports: CPUID leaf 1, ECX bit 29.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  f.f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
  f.avx512_vnni = __builtin_cpu_supports("avx512vnni");
  // AVX-VNNI: CPUID leaf 7 subleaf 1, EAX bit 4 (not every compiler's __builtin_cpu_supports
  // knows it); the AVX state the OS must save is the one avx2 already checked.
  f.avx_vnni = f.avx2 && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 4)) != 0;
#endif
  return f;
}

Isa level_of(const CpuFeatures& f) {
  if (!(f.avx2 && f.fma)) return Isa::Scalar;
  if (!(f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl)) return Isa::Avx2;
  return f.avx512_bf16 ? Isa::Avx512Bf16 : Isa::Avx512;
}

// The cap as an int; -1 = none. Starts from HIPPO_ISA on first use.
constexpr int kNoCap = -1, kUnset = -2;
std::atomic<int> g_cap{kUnset};

int cap_from_env() {
  const char* env = std::getenv("HIPPO_ISA");
  if (env == nullptr || *env == '\0') return kNoCap;
  const std::optional<Isa> level = parse_isa(env);
  HIPPO_CHECK(level.has_value(), "HIPPO_ISA='", env,
              "' is not one of scalar, avx2, avx512, avx512_bf16");
  return static_cast<int>(*level);
}

int cap() {
  int c = g_cap.load(std::memory_order_relaxed);
  if (c == kUnset) {
    c = cap_from_env();
    g_cap.store(c, std::memory_order_relaxed);
  }
  return c;
}

}  // namespace

const CpuFeatures& cpu_features_detected() {
  static const CpuFeatures f = probe();
  return f;
}

Isa detected_isa() {
  static const Isa level = level_of(cpu_features_detected());
  return level;
}

Isa active_isa() {
  const int c = cap();
  const int d = static_cast<int>(detected_isa());
  return static_cast<Isa>(c == kNoCap ? d : std::min(c, d));
}

void set_isa_override(Isa level) { g_cap.store(static_cast<int>(level)); }
void clear_isa_override() { g_cap.store(cap_from_env()); }

const char* isa_name(Isa level) {
  switch (level) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Bf16: return "avx512_bf16";
  }
  return "?";
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (Isa level : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16})
    if (name == isa_name(level)) return level;
  return std::nullopt;
}

std::string cpu_features_summary() {
  const CpuFeatures& f = cpu_features_detected();
  std::string s = "cpu:";
  auto add = [&](bool has, const char* name) {
    if (has) s += std::string(" ") + name;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512dq, "avx512dq");
  add(f.avx512vl, "avx512vl");
  add(f.avx512_bf16, "avx512_bf16");
  add(f.avx512_vnni, "avx512_vnni");
  add(f.avx_vnni, "avx_vnni");
  s += std::string("; detected ") + isa_name(detected_isa()) + ", using " + isa_name(active_isa());
  return s;
}

ScopedIsa::ScopedIsa(Isa level) : previous_(cap()) { set_isa_override(level); }
ScopedIsa::~ScopedIsa() { g_cap.store(previous_); }

}  // namespace hippo
