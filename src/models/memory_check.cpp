#include "models/memory_check.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "core/error.h"

namespace hippo {

ModelMemory estimate_model_memory(const ModelConfig& cfg) {
  ModelMemory m;
  m.params = static_cast<uint64_t>(cfg.num_params());
  // Each diagonal SSM kernel (ssm/s4d.h) keeps, per channel and mode, five complex<double>,
  // three complex<float> and eight doubles of scratch: 168 bytes, allocated by its constructor.
  const uint64_t modes = static_cast<uint64_t>(cfg.d_state / 2);
  for (MixerKind k : cfg.mixers) {
    uint64_t channels = 0;
    if (k == MixerKind::S4D) channels = static_cast<uint64_t>(cfg.d_model);
    if (k == MixerKind::H3 || k == MixerKind::H3NoShift)
      channels = static_cast<uint64_t>(cfg.d_model / cfg.head_dim);
    m.ssm_buffers += channels * (168 * modes + 8);
  }
  return m;
}

uint64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    unsigned long long kib = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kib) == 1) return kib * 1024ull;
  }
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

static std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / (1ull << 30));
  return buf;
}

void check_model_memory(const ModelConfig& cfg, ModelUse use, const std::string& source,
                        uint64_t available) {
  const ModelMemory m = estimate_model_memory(cfg);
  // Under the config's field bounds params < 2^48, so none of this overflows.
  const uint64_t weights = m.params * (use == ModelUse::Any ? 2 : 4) + m.ssm_buffers;
  const uint64_t training = use == ModelUse::Training ? m.params * 12 : 0;
  if (available == 0 || weights + training <= available) return;
  const std::string what =
      use == ModelUse::Training
          ? str(" (+", gib(training), " GiB training state: gradients and optimizer moments)")
      : use == ModelUse::Any ? std::string(" (at least; bf16 weights)")
                             : std::string(" (fp32)");
  fail(source, ": model needs ~", gib(weights), " GiB for parameters", what, ", this machine has ",
       gib(available), " GiB available (", m.params, " parameters: d_model ", cfg.d_model,
       ", n_layer ", cfg.n_layer, ", vocab_size ", cfg.vocab_size, ", d_state ", cfg.d_state, ")");
}

void check_model_memory(const ModelConfig& cfg, ModelUse use, const std::string& source) {
  check_model_memory(cfg, use, source, available_memory_bytes());
}

}  // namespace hippo
