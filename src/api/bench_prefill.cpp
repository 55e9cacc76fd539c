// hippo::bench_prefill (include/hippo/bench.hpp): prefill tokens/s and peak resident memory by
// prompt length, 125M-shape random-weight models (H3-only, hybrid, Transformer), through the
// chunked prefill (one chunk's activations whatever the length; attention adds its KV cache).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
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

namespace {
struct Run {
  double wall = 0, cpu = 0, before_mb = 0, peak_mb = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
}  // namespace

void bench_prefill(const BenchPrefillOptions& o) {
  check_options(o);
  HIPPO_CHECK(o.repeat >= 1 && o.repeat <= 1000, "--repeat must be in [1, 1000], got ", o.repeat);
  set_num_threads(o.threads);
  std::printf("threads %d; peak RSS: the process's high-water mark during the prefill (reset "
              "before each length)%s\n", o.threads,
              o.repeat > 1 ? "; repeats interleave the models (A B A B), medians at the end" : "");
  std::printf("%-12s %9s %7s %4s %10s %12s %12s %11s %11s %13s\n", "model", "length", "chunk",
              "rep", "wall s", "tok/s wall", "tok/s cpu", "weights MB", "peak RSS MB",
              "peak-before MB");
  const int longest = *std::max_element(o.lengths.begin(), o.lengths.end());
  // All models first (each warmed once), so that repeats can alternate between them.
  std::vector<std::unique_ptr<LanguageModel>> models;
  std::vector<double> weights_mb;
  for (const std::string& kind : o.models) {
    const int max_pos = std::max(1, std::min(longest, o.transformer_max));
    auto m = std::make_unique<LanguageModel>(shape(kind, o.small, max_pos));
    m->init(1);
    weights_mb.push_back(static_cast<double>(m->num_params()) * 4 / (1 << 20));
    {  // untimed: oneDNN's JIT, FFT plans, per-thread scratch
      ModelState warm = m->new_state(1);
      if (o.chunk > 0) warm.chunk = o.chunk;
      const int w = std::min(longest, warm.chunk);
      std::vector<int32_t> t(static_cast<size_t>(w), 1);
      m->prefill(t.data(), 1, w, warm);
    }
    models.push_back(std::move(m));
  }
  const size_t nm = models.size(), nl = o.lengths.size();
  std::vector<std::vector<Run>> runs(nm * nl);  // [model * nl + length]
  std::vector<int> chunk_used(nm * nl, 0);
  Rng rng(3);
  for (int rep = 0; rep < o.repeat; ++rep)
    for (size_t li = 0; li < nl; ++li) {
      const int L = o.lengths[li];
      for (size_t mi = 0; mi < nm; ++mi) {
        const std::string& kind = o.models[mi];
        if (kind == "transformer" && L > o.transformer_max) continue;
        const LanguageModel& m = *models[mi];
        std::vector<int32_t> tokens(static_cast<size_t>(L));
        const int V = m.config().vocab_size;
        for (auto& t : tokens) t = static_cast<int32_t>(rng.below(V));
        ModelState st = m.new_state(1);
        if (o.chunk > 0) st.chunk = o.chunk;
        reset_peak_rss();
        Run r;
        r.before_mb = status_kb("VmRSS") / 1024.0;
        const auto w0 = std::chrono::steady_clock::now();
        const double c0 = cpu_seconds();
        m.prefill(tokens.data(), 1, L, st);
        r.cpu = cpu_seconds() - c0;
        r.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
        r.peak_mb = status_kb("VmHWM") / 1024.0;
        runs[mi * nl + li].push_back(r);
        chunk_used[mi * nl + li] = st.chunk;
        std::printf("%-12s %9d %7d %4d %10.2f %12.1f %12.1f %11.0f %11.0f %13.0f\n",
                    kind.c_str(), L, st.chunk, rep, r.wall, L / r.wall, L / r.cpu,
                    weights_mb[mi], r.peak_mb, r.peak_mb - r.before_mb);
        std::fflush(stdout);
      }
    }
  // Rows: medians of the repeats (peak: the highest), model-major.
  std::string csv = "model,length,chunk,wall_s,cpu_s,tokens_per_s_wall,tokens_per_s_cpu,"
                    "weights_mb,rss_before_mb,peak_rss_mb,peak_over_before_mb,repeats\n";
  for (size_t mi = 0; mi < nm; ++mi)
    for (size_t li = 0; li < nl; ++li) {
      const auto& rs = runs[mi * nl + li];
      if (rs.empty()) continue;
      std::vector<double> wall, cpu;
      double before = rs[0].before_mb, peak = 0, over = 0;
      for (const Run& r : rs) {
        wall.push_back(r.wall);
        cpu.push_back(r.cpu);
        if (r.peak_mb - r.before_mb > over) over = r.peak_mb - r.before_mb;
        peak = std::max(peak, r.peak_mb);
      }
      const int L = o.lengths[li];
      const double w = median(wall), c = median(cpu);
      char line[512];
      std::snprintf(line, sizeof line, "%s,%d,%d,%.4f,%.4f,%.2f,%.2f,%.1f,%.1f,%.1f,%.1f,%zu\n",
                    o.models[mi].c_str(), L, chunk_used[mi * nl + li], w, c, L / w, L / c,
                    weights_mb[mi], before, peak, over, rs.size());
      csv += line;
    }
  if (o.repeat > 1) {  // medians, and each model against the Transformer run next to it
    std::printf("\nmedians of %d repeats (tok/s by CPU time)\n", o.repeat);
    const auto tf = std::find(o.models.begin(), o.models.end(), "transformer");
    const size_t ti = static_cast<size_t>(tf - o.models.begin());
    for (size_t mi = 0; mi < nm; ++mi)
      for (size_t li = 0; li < nl; ++li) {
        const auto& rs = runs[mi * nl + li];
        if (rs.empty()) continue;
        std::vector<double> tps, ratio;
        for (size_t k = 0; k < rs.size(); ++k) {
          tps.push_back(o.lengths[li] / rs[k].cpu);
          if (tf != o.models.end() && ti != mi && runs[ti * nl + li].size() == rs.size())
            ratio.push_back(runs[ti * nl + li][k].cpu / rs[k].cpu);
        }
        std::printf("%-12s %9d  tok/s %9.1f  (min %9.1f max %9.1f)", o.models[mi].c_str(),
                    o.lengths[li], median(tps), *std::min_element(tps.begin(), tps.end()),
                    *std::max_element(tps.begin(), tps.end()));
        if (!ratio.empty())
          std::printf("  vs transformer %.3fx (min %.3f max %.3f)", median(ratio),
                      *std::min_element(ratio.begin(), ratio.end()),
                      *std::max_element(ratio.begin(), ratio.end()));
        std::printf("\n");
      }
  }
  if (!o.csv.empty()) write_file_atomic(o.csv, csv);
}

}  // namespace hippo
