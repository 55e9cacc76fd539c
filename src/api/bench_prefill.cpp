// hippo::bench_prefill (include/hippo/bench.hpp): prefill tokens/s and peak resident memory by
// prompt length, 125M-shape random-weight models (H3-only, hybrid, Transformer), through the
// chunked prefill (one chunk's activations whatever the length; attention adds its KV cache).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "hippo/bench.hpp"
#include "io/safetensors.h"
#include "models/lm.h"

namespace hippo {

namespace {

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// kB from /proc/self/status ("VmRSS:" now, "VmHWM:" peak since the last reset); -1 if absent.
int64_t status_kb(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size()));
  return -1;
}

// Resets VmHWM to the current RSS (Linux clear_refs 5), so each length has its own peak.
void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}

ModelConfig shape(const std::string& kind, bool small, int max_position) {
  const int layers_n = small ? 2 : 12, attn_at = small ? 1 : 6;
  nlohmann::json layers = nlohmann::json::array();
  for (int i = 0; i < layers_n; ++i)
    layers.push_back(kind == "transformer" || (kind == "hybrid" && i == attn_at) ? "attention" : "h3");
  nlohmann::json j = {{"vocab_size", small ? 256 : 50257}, {"d_model", small ? 64 : 768},
                      {"n_layer", layers_n}, {"d_state", 64}, {"attn_heads", small ? 4 : 12},
                      {"layers", layers}};
  if (kind == "transformer") {
    j["learned_pos"] = true;
    j["max_position"] = max_position;
  }
  return ModelConfig::from_json(j, kind + (small ? "-small" : "-125m"));
}

void check_options(const BenchPrefillOptions& o) {
  HIPPO_CHECK(o.threads >= 1 && o.threads <= 1024, "-t/--threads must be in [1, 1024], got ",
              o.threads);
  HIPPO_CHECK(!o.lengths.empty(), "--lengths needs at least one length");
  for (int L : o.lengths)
    HIPPO_CHECK(L >= 1 && L <= (1 << 24), "--lengths: each must be in [1, 16777216], got ", L);
  HIPPO_CHECK(!o.models.empty(), "--models needs at least one model");
  for (const auto& m : o.models)
    HIPPO_CHECK(m == "h3" || m == "hybrid" || m == "transformer", "--models: '", m,
                "' is not one of h3, hybrid, transformer");
  HIPPO_CHECK(o.transformer_max >= 1 && o.transformer_max <= (1 << 20),
              "--transformer-max must be in [1, 1048576], got ", o.transformer_max);
  HIPPO_CHECK(o.chunk >= 0 && o.chunk <= (1 << 24), "--chunk must be in [0, 16777216], got ", o.chunk);
}

}  // namespace

void bench_prefill(const BenchPrefillOptions& o) {
  check_options(o);
  set_num_threads(o.threads);
  std::string csv = "model,length,chunk,wall_s,cpu_s,tokens_per_s_wall,tokens_per_s_cpu,"
                    "weights_mb,rss_before_mb,peak_rss_mb,peak_over_before_mb\n";
  std::printf("threads %d; peak RSS: the process's high-water mark during the prefill (reset "
              "before each length)\n", o.threads);
  std::printf("%-12s %9s %7s %10s %12s %12s %11s %11s %13s\n", "model", "length", "chunk",
              "wall s", "tok/s wall", "tok/s cpu", "weights MB", "peak RSS MB", "peak-before MB");
  const int longest = *std::max_element(o.lengths.begin(), o.lengths.end());
  for (const std::string& kind : o.models) {
    const int max_pos = std::max(1, std::min(longest, o.transformer_max));
    LanguageModel m(shape(kind, o.small, max_pos));
    m.init(1);
    const double weights_mb = static_cast<double>(m.num_params()) * 4 / (1 << 20);
    Rng rng(3);
    const int V = m.config().vocab_size;
    {  // untimed: oneDNN's JIT, FFT plans, per-thread scratch
      ModelState warm = m.new_state(1);
      if (o.chunk > 0) warm.chunk = o.chunk;
      const int w = std::min(longest, warm.chunk);
      std::vector<int32_t> t(static_cast<size_t>(w), 1);
      m.prefill(t.data(), 1, w, warm);
    }
    for (int L : o.lengths) {
      if (kind == "transformer" && L > o.transformer_max) continue;
      std::vector<int32_t> tokens(static_cast<size_t>(L));
      for (auto& t : tokens) t = static_cast<int32_t>(rng.below(V));
      ModelState st = m.new_state(1);
      if (o.chunk > 0) st.chunk = o.chunk;
      reset_peak_rss();
      const int64_t before_kb = status_kb("VmRSS");
      const auto w0 = std::chrono::steady_clock::now();
      const double c0 = cpu_seconds();
      m.prefill(tokens.data(), 1, L, st);
      const double cpu = cpu_seconds() - c0;
      const double wall =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
      const int64_t peak_kb = status_kb("VmHWM");
      const double before_mb = before_kb / 1024.0, peak_mb = peak_kb / 1024.0;
      std::printf("%-12s %9d %7d %10.2f %12.1f %12.1f %11.0f %11.0f %13.0f\n", kind.c_str(), L,
                  st.chunk, wall, L / wall, L / cpu, weights_mb, peak_mb, peak_mb - before_mb);
      std::fflush(stdout);
      char line[512];
      std::snprintf(line, sizeof line, "%s,%d,%d,%.4f,%.4f,%.2f,%.2f,%.1f,%.1f,%.1f,%.1f\n",
                    kind.c_str(), L, st.chunk, wall, cpu, L / wall, L / cpu, weights_mb,
                    before_mb, peak_mb, peak_mb - before_mb);
      csv += line;
      if (!o.csv.empty()) write_file_atomic(o.csv, csv);  // rows so far, if a long run is cut
    }
  }
}

}  // namespace hippo
