// hippo::bench_generate (include/hippo/bench.hpp): prompt (prefill) and decode speed of
// random-weight models of the 125M shape, the H3 hybrid (attention at layer 6) against a
// Transformer of the same width and depth, and the memory-bandwidth bound of batch-1 decoding.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/bf16_activations_scope.h"
#include "api/bf16_layout_option.h"
#include "api/kv_cache_option.h"
#include "core/buffer.h"
#include "core/cpu_peak.h"
#include "core/error.h"
#include "core/phase_profile.h"
#include "core/rng.h"
#include "core/threads.h"
#include "generate/sampler.h"
#include "generate/state_io.h"
#include "hippo/bench.hpp"
#include "models/bf16_weights.h"
#include "models/q8_weights.h"
#include "models/lm.h"

namespace hippo {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Wall and process CPU seconds of a stretch of work. On a shared machine at 1 thread, CPU time
// is what the work would take on a core of its own (other jobs only delay it).
struct Timer {
  Clock::time_point wall0 = Clock::now();
  double cpu0 = process_cpu_seconds();
  double wall() const { return since(wall0); }
  double cpu() const { return process_cpu_seconds() - cpu0; }
};

// Best of three streaming reads of a 1 GiB buffer, in GB/s by wall time; `by_cpu` gets the
// same by process CPU time (at 1 thread the figure comparable with CPU-time tokens/s).
double measure_read_bandwidth(double* by_cpu) {
  const size_t n = (size_t{1} << 30) / sizeof(float);
  Buffer buf;
  float* x = buf.get(n);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(i & 7);
  double best = 0, sink = 0;
  *by_cpu = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = Clock::now();
    const double c0 = process_cpu_seconds();
    double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (size_t blk = 0; blk < n / 4096; ++blk) {
      float acc[16] = {};
      const float* p = x + blk * 4096;
      for (size_t i = 0; i < 4096; i += 16)
#pragma omp simd
        for (int j = 0; j < 16; ++j) acc[j] += p[i + j];
      for (float a : acc) total += a;
    }
    best = std::max(best, static_cast<double>(n * sizeof(float)) / since(t0) / 1e9);
    *by_cpu = std::max(*by_cpu, static_cast<double>(n * sizeof(float)) /
                                    (process_cpu_seconds() - c0) / 1e9);
    sink += total;
  }
  if (sink < 0) std::printf("%g", sink);  // keeps the reads
  return best;
}

enum Kind { kHybrid = 0, kTransformer = 1, kH3 = 2, kKinds = 3 };
const char* const kNames[kKinds] = {"hybrid", "transformer", "h3"};

// The 125M shape: the hybrid has attention at layer 6 (as the released 125M), the
// Transformer in every layer (learned positions), the H3 model in none.
ModelConfig shape_125m(Kind kind, int max_position) {
  const bool transformer = kind == kTransformer;
  nlohmann::json layers = nlohmann::json::array();
  for (int i = 0; i < 12; ++i)
    layers.push_back(transformer || (kind == kHybrid && i == 6) ? "attention" : "h3");
  nlohmann::json j = {{"vocab_size", 50257}, {"d_model", 768}, {"n_layer", 12},
                      {"d_state", 64},       {"attn_heads", 12}, {"layers", layers}};
  if (transformer) {
    j["learned_pos"] = true;
    j["max_position"] = max_position;
  }
  return ModelConfig::from_json(j, std::string(kNames[kind]) + "-125m");
}

struct Speed {
  double wall = 0, cpu = 0;  // tokens/s by wall time and by process CPU time
};

struct Row {
  int prompt, batch;
  Speed prefill, decode;
  double state_bytes = 0;  // per sequence and step: KV cache and SSM states, mean over the decode
};

// Bytes a step of sequence state `st` moves besides the weights (MixerState::step_bytes), per
// sequence.
double state_step_bytes(const ModelState& st) {
  double total = 0;
  for (const auto& l : st.layers) total += static_cast<double>(l->step_bytes());
  return total / st.batch;
}

// Decodes `tokens` greedy steps from `st` (batch rows); tokens/s over all sequences in the
// fastest window of 16 steps, by wall and by CPU time separately: other jobs on a shared machine
// only ever slow a window down, so the fastest is the best estimate of the machine's own speed.
Speed decode_speed(LanguageModel& m, ModelState& st, const float* first_logits, int tokens) {
  const int B = st.batch, V = m.config().padded_vocab();
  std::vector<int32_t> next(static_cast<size_t>(B));
  const float* lg = first_logits;
  std::vector<float> keep(lg, lg + static_cast<int64_t>(B) * V);
  // One untimed step so lazily sized buffers are in place.
  for (int b = 0; b < B; ++b) next[b] = argmax(keep.data() + static_cast<int64_t>(b) * V, V);
  lg = m.step(next.data(), st);
  constexpr int kWindow = 16;
  Speed best;
  for (int done = 0; done < tokens;) {
    const int w = std::min(kWindow, tokens - done);
    Timer t;
    for (int i = 0; i < w; ++i) {
      for (int b = 0; b < B; ++b) next[b] = argmax(lg + static_cast<int64_t>(b) * V, V);
      lg = m.step(next.data(), st);
    }
    const double n = static_cast<double>(B) * w;
    best.wall = std::max(best.wall, n / t.wall());
    best.cpu = std::max(best.cpu, n / t.cpu());
    done += w;
  }
  return best;
}

// The bound of batch-1 decoding counting every byte a step must move: the weights plus the
// KV cache (read up to the current length) and the SSM states (read and written back), at the
// mean length of the timed decode.
void print_all_bytes_bounds(const char* name, const std::vector<Row>& rows, int64_t weight_bytes,
                            double bw) {
  for (const Row& r : rows) {
    if (r.batch != 1) continue;
    const double total = static_cast<double>(weight_bytes) + r.state_bytes;
    std::printf("%s: prompt %d: + %.1f MB of KV cache and SSM state per token -> all-bytes bound "
                "%.1f tokens/s\n", name, r.prompt, r.state_bytes / 1e6, bw * 1e9 / total);
  }
}

std::vector<Row> bench_model(LanguageModel& m, const BenchGenerateOptions& o) {
  std::vector<Row> rows;
  Rng rng(5);
  const int V = m.config().vocab_size;
  {
    // Untimed prefill of the longest prompt: oneDNN's JIT and the first touch of every layer's
    // (grow-only) buffers would otherwise take about half the time of the first timed prefill.
    const int longest = *std::max_element(o.prompts.begin(), o.prompts.end());
    std::vector<int32_t> warm_prompt(static_cast<size_t>(longest), 0);
    ModelState warm = m.new_state(1);
    m.prefill(warm_prompt.data(), 1, longest, warm);
  }
  for (int P : o.prompts) {
    std::vector<int32_t> prompt(static_cast<size_t>(P));
    for (auto& t : prompt) t = static_cast<int32_t>(rng.below(V));
    // Prefill is measured at batch 1; larger batches fork the prompt's state (same decode work).
    ModelState st = m.new_state(1);
    prof::reset();  // HIPPO_PROFILE set: the phases of this prefill, printed below
    Timer t;
    const float* lg = m.prefill(prompt.data(), 1, P, st);
    const Speed prefill{P / t.wall(), P / t.cpu()};
    if (prof::enabled()) prof::report(stderr, "prefill of " + std::to_string(P) + " tokens");
    std::vector<float> first(lg, lg + m.config().padded_vocab());
    for (int B : o.batches) {
      ModelState sb = repeat_state(st, B);
      reserve_state(m, sb, P + o.tokens + 1);
      std::vector<float> lgB;
      for (int b = 0; b < B; ++b) lgB.insert(lgB.end(), first.begin(), first.end());
      const double bytes_before = state_step_bytes(sb);
      const Speed decode = decode_speed(m, sb, lgB.data(), o.tokens);
      rows.push_back({P, B, prefill, decode, (bytes_before + state_step_bytes(sb)) / 2});
      std::fprintf(stderr, "  prompt %5d batch %2d: prefill %8.1f tok/s, decode %8.2f tok/s (wall)\n",
                   P, B, prefill.wall, rows.back().decode.wall);
    }
  }
  return rows;
}

// Bounds of the count options: beyond them the bench would only measure swapping.
constexpr int kMaxThreads = 1024, kMaxSteps = 1 << 16, kMaxPrompt = 1 << 16, kMaxBatch = 256;

void check_options(const BenchGenerateOptions& o) {
  HIPPO_CHECK(o.threads >= 0 && o.threads <= kMaxThreads, "-t/--threads must be in [0, ",
              kMaxThreads, "] (0: all cores), got ", o.threads);
  HIPPO_CHECK(o.tokens >= 1 && o.tokens <= kMaxSteps, "-n/--tokens must be in [1, ", kMaxSteps,
              "], got ", o.tokens);
  HIPPO_CHECK(!o.prompts.empty(), "--prompts needs at least one length");
  for (int p : o.prompts)
    HIPPO_CHECK(p >= 1 && p <= kMaxPrompt, "--prompts: each length must be in [1, ", kMaxPrompt,
                "], got ", p);
  HIPPO_CHECK(!o.batches.empty(), "--batches needs at least one size");
  for (int b : o.batches)
    HIPPO_CHECK(b >= 1 && b <= kMaxBatch, "--batches: each size must be in [1, ", kMaxBatch,
                "], got ", b);
}

}  // namespace

void bench_generate(const BenchGenerateOptions& options) {
  check_options(options);
  BenchGenerateOptions o = options;
  if (o.quick) {
    o.prompts = {512};
    o.tokens = std::min(o.tokens, 16);
  }
  if (o.long_prompt) o.prompts.push_back(8192);
  set_num_threads(o.threads);
  HIPPO_CHECK(!o.fast_bf16 || o.bf16, "--fast-bf16 needs --bf16 (it concerns bf16 weights)");
  HIPPO_CHECK(!(o.bf16 && o.q8), "--bf16 and --q8 exclude each other");
  HIPPO_CHECK(o.q8_layout == "auto" || o.q8_layout == "rows" || o.q8_layout == "rows4",
              "q8_layout must be auto, rows or rows4, got '", o.q8_layout, "'");
  api::bf16_layout_of(o.bf16_layout);  // checks the value before any work
  HIPPO_CHECK(o.bf16_layout == "auto" || o.bf16,
              "--bf16-layout needs --bf16 (it concerns bf16 weights)");
  HIPPO_CHECK(o.q8_layout == "auto" || o.q8, "--q8-layout needs --q8 (it concerns q8 weights)");
  const api::Bf16ActivationsScope bf16_mode(o.fast_bf16);
  const auto wall0 = Clock::now();
  const std::clock_t cpu0 = std::clock();
  const int max_pos = *std::max_element(o.prompts.begin(), o.prompts.end()) + o.tokens + 8;
  double bw_cpu = 0;
  const double bw_wall = measure_read_bandwidth(&bw_cpu);
  // At 1 thread the tables are read by CPU time, so the bound uses the CPU-time bandwidth too.
  const double bw = o.threads == 1 ? bw_cpu : bw_wall;
  std::printf("weights: %s%s\n",
              o.bf16 ? "bf16 (linear + embedding; SSM, norms fp32)"
              : o.q8 ? "q8 (linear + embedding, int8 blocks of 32 + a scale each; SSM, norms fp32)"
                     : "fp32",
              o.fast_bf16 ? "; decoding activations rounded to bf16 (--fast-bf16)" : "");
  if (o.q8)
    std::printf("q8 layout: %s\n",
                o.q8_layout != "auto"                      ? o.q8_layout.c_str()
                : q8_decode_layout() == Q8Layout::Rows4 ? "rows4 (auto)"
                                                        : "rows (auto)");
  if (o.bf16)
    std::printf("bf16 layout: %s\n",
                o.bf16_layout != "auto"                        ? o.bf16_layout.c_str()
                : bf16_decode_layout() == Bf16Layout::Rows8 ? "rows8 (auto)"
                                                            : "rows (auto)");
  std::printf("threads %d; DRAM read bandwidth (1 GiB streaming sum, best of 3): %.1f GB/s by "
              "wall time, %.1f GB/s by CPU time\n", o.threads, bw_wall, bw_cpu);
  if (num_threads() > 1) {
    // Whether the threads have a core each right now (bench/corun_probe.cpp says why it varies).
    const FmaCoRun c = measure_fma_corun(num_threads());
    std::printf("FMA loops on %d threads at once:", num_threads());
    for (double g : c.each) std::printf(" %.1f", g);
    std::printf(" GFLOP/s against %.1f alone: cores %s\n", c.single,
                c.separate() ? "separate" : "shared (scaling not measurable now)");
  }
  std::vector<Row> res[kKinds];
  int64_t weight_bytes[kKinds];
  for (int k = 0; k < kKinds; ++k) {
    if (!o.only.empty() && o.only != kNames[k]) continue;
    if (o.only.empty() && k == kH3 && o.no_h3) continue;
    LanguageModel m(shape_125m(static_cast<Kind>(k), max_pos));
    m.init(1);
    if (o.bf16) convert_weights_to_bf16(m, api::bf16_layout_of(o.bf16_layout));
    if (o.q8)
      convert_weights_to_q8(m, o.q8_layout == "rows"    ? std::optional(Q8Layout::Rows)
                               : o.q8_layout == "rows4" ? std::optional(Q8Layout::Rows4)
                                                        : std::nullopt);
    if (o.q8) {  // what the conversion made: Rows4 holds the scales as bf16, Rows as fp32
      bool bf16_scales = false;
      for (auto& p : m.params()) bf16_scales |= p.param->stored.scales_bf16 != nullptr;
      std::printf("%s: q8 scales %s\n", kNames[k], bf16_scales ? "bf16" : "fp32");
    }
    m.set_kv_cache(api::resolve_kv_cache(o.kv_cache, m));
    if (k != kH3) std::printf("%s: KV cache %s\n", kNames[k], kv_cache_name(m.kv_cache()));
    // Bytes a batch-1 step must read: every parameter except the unused position rows and all
    // but one embedding row (the tied head reads the whole embedding once). The shift SSM's B
    // and C count once: a step in the ring form reads its kernel K, one array of their size,
    // instead (ssm/shift.h).
    weight_bytes[k] = 0;
    for (auto& p : m.params()) {
      if (p.name.ends_with("ssm_k_kernel.kernel.C")) continue;
      const WeightView w = p.param->view();
      const int64_t n = p.param->value.numel();
      weight_bytes[k] += !p.param->has_stored() ? n * 4
                         : w.dtype == DType::Q8    // int8 + fp32 or bf16 scales
                             ? n + n / kQ8Block * (w.scales_bf16 ? 2 : 4)
                             : n * 2;
    }
    if (k == kTransformer) weight_bytes[k] -= static_cast<int64_t>(max_pos - 1) * 768 * 4;
    std::fprintf(stderr, "%s: %.1fM parameters\n", kNames[k], m.num_params() / 1e6);
    res[k] = bench_model(m, o);
  }
  if (!o.only.empty()) {  // one model: no ratio column
    const int k = static_cast<int>(std::find(kNames, kNames + kKinds, o.only) - kNames);
    std::printf("%s, tokens/s (wall / process CPU)\n%-7s %-6s %20s %20s\n", kNames[k], "prompt",
                "batch", "prompt t/s", "decode t/s");
    for (const Row& r : res[k])
      std::printf("%-7d %-6d %9.1f / %8.1f %9.2f / %8.2f\n", r.prompt, r.batch, r.prefill.wall,
                  r.prefill.cpu, r.decode.wall, r.decode.cpu);
    std::printf("%s: weights read per batch-1 token %.0f MB -> bandwidth bound %.1f tokens/s\n",
                kNames[k], weight_bytes[k] / 1e6, bw * 1e9 / weight_bytes[k]);
    print_all_bytes_bounds(kNames[k], res[k], weight_bytes[k], bw);
    return;
  }
  auto table = [&](const char* title, bool cpu) {
    std::printf("%s\n%-7s %-6s %14s %14s %14s %14s %10s%s\n", title, "prompt", "batch",
                "hyb prompt t/s", "tf prompt t/s", "hyb decode t/s", "tf decode t/s", "ratio h/t",
                o.no_h3 ? "" : "  h3 decode t/s");
    for (size_t i = 0; i < res[0].size(); ++i) {
      const Row &h = res[0][i], &t = res[1][i];
      auto v = [cpu](const Speed& x) { return cpu ? x.cpu : x.wall; };
      std::printf("%-7d %-6d %14.1f %14.1f %14.2f %14.2f %10.2f", h.prompt, h.batch,
                  v(h.prefill), v(t.prefill), v(h.decode), v(t.decode), v(h.decode) / v(t.decode));
      if (!o.no_h3) std::printf(" %14.2f", v(res[kH3][i].decode));
      std::printf("\n");
    }
  };
  table("tokens/s by wall-clock time:", false);
  if (o.threads == 1)
    table("tokens/s by process CPU time (1 thread: as if the core were ours alone):", true);
  // On a shared machine other jobs take cores; this says how much of ours we got.
  const double cpu_share = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC /
                           (since(wall0) * o.threads);
  std::printf("CPU time / (wall time x threads) over the run: %.0f%%%s\n", 100 * cpu_share,
              cpu_share < 0.9 ? " (machine busy: numbers are pessimistic)" : "");
  for (int k = 0; k < kKinds; ++k)
    if (!res[k].empty()) {
      std::printf("%s: weights read per batch-1 token %.0f MB -> bandwidth bound %.1f tokens/s "
                  "(weights only)\n",
                  kNames[k], weight_bytes[k] / 1e6, bw * 1e9 / weight_bytes[k]);
      print_all_bytes_bounds(kNames[k], res[k], weight_bytes[k], bw);
    }
}

}  // namespace hippo
