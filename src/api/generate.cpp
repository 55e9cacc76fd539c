// hippo::generate (include/hippo/generate.hpp): text from a model. The prompt runs in
// convolution mode (prefill), then each new token is one recurrent step; tokens are streamed
// to stdout as they are made.
#include "hippo/generate.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "api/kv_cache_option.h"
#include "api/bf16_activations_scope.h"
#include "core/error.h"
#include "core/threads.h"
#include "data/read_file.h"
#include "data/tokenizer.h"
#include "generate/sampler.h"
#include "generate/state_io.h"
#include "io/output_path.h"
#include "io/run_dir.h"
#include "models/lm.h"
#include "api/bf16_layout_option.h"
#include "api/q8_layout_option.h"
#include "models/load.h"

namespace hippo {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Upper bounds of the count options: far beyond any real use, small enough that nothing
// derived from them overflows or is allocated before the work it stands for.
constexpr int64_t kMaxTokens = 1'000'000'000;  // -n: the KV cache grows with the tokens made
constexpr int kMaxSamples = 1 << 16, kMaxBatch = 1 << 16, kMaxThreads = 1024;

// Every option that is a count or a sampling parameter, before any file is read.
void check_options(const GenerateOptions& o) {
  HIPPO_CHECK(o.n >= 0 && o.n <= kMaxTokens, "-n/--tokens must be in [0, ", kMaxTokens, "], got ",
              o.n);
  HIPPO_CHECK(o.samples >= 1 && o.samples <= kMaxSamples, "--samples must be in [1, ", kMaxSamples,
              "], got ", o.samples);
  HIPPO_CHECK(std::isfinite(o.temperature) && o.temperature >= 0,
              "--temp must be a finite number >= 0 (0: greedy), got ", o.temperature);
  HIPPO_CHECK(o.top_k >= 0, "--top-k must be >= 0 (0: no limit), got ", o.top_k);
  HIPPO_CHECK(std::isfinite(o.top_p) && o.top_p > 0 && o.top_p <= 1,
              "--top-p must be in (0, 1], got ", o.top_p);
  HIPPO_CHECK(o.threads >= 0 && o.threads <= kMaxThreads, "-t/--threads must be in [0, ",
              kMaxThreads, "] (0: all cores), got ", o.threads);
  const int64_t prompts = static_cast<int64_t>(o.prompts.size() + o.prompt_files.size());
  HIPPO_CHECK(prompts * o.samples <= kMaxBatch, "--samples ", o.samples, " with ", prompts,
              " prompts makes ", prompts * o.samples, " sequences, more than ", kMaxBatch);
  if (!o.save_state.empty()) {
    // Never over an input (the model, the state being continued, a prompt), and over an
    // existing file only when it is a state file itself.
    std::vector<std::string> inputs = {o.model, o.load_state};
    inputs.insert(inputs.end(), o.prompt_files.begin(), o.prompt_files.end());
    check_state_output_path(o.save_state, "--save-state", inputs);
  }
}

// Refuses a batch whose recurrent state alone would not fit in this machine's memory: the
// estimate (the state of one sequence as it is now, SSM states, KV cache and logits, times
// the batch) is made before the forks are allocated.
void check_state_memory(const LanguageModel& model, const ModelState& state, int64_t batch,
                        int samples) {
  const double per_seq = static_cast<double>(state_bytes(state)) / std::max(1, state.batch) +
                         4.0 * model.config().padded_vocab();
  const double need = per_seq * static_cast<double>(batch);
  const double phys = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGESIZE);
  HIPPO_CHECK(phys <= 0 || need <= 0.8 * phys, "--samples ", samples, ": ", batch,
              " sequences need about ", need / 1e9, " GB of generation state, more than this "
              "machine's memory allows (", phys / 1e9, " GB)");
}

}  // namespace

void generate(const GenerateOptions& o) {
  check_options(o);
  set_num_threads(o.threads);
  const api::Bf16ActivationsScope bf16_mode(o.fast_bf16);
  // Memory-mapped: fp32 weights used in place, bf16 files stay bf16 (models/load.h).
  std::map<std::string, std::string> meta;
  const std::unique_ptr<LanguageModel> loaded = load_model_mapped(o.model, &meta);
  LanguageModel& model = *loaded;
  model.set_kv_cache(api::resolve_kv_cache(o.kv_cache, model));
  api::apply_q8_layout(o.q8_layout, model);
  api::apply_bf16_layout(o.bf16_layout, model);
  const ModelConfig& cfg = model.config();
  if (o.fast_bf16) {
    bool any_bf16 = false;
    for (const auto& p : model.params()) any_bf16 = any_bf16 || p.param->has_stored();
    if (!any_bf16)
      std::fprintf(stderr, "[generate] --fast-bf16 has no effect: %s holds fp32 weights "
                   "(convert with --dtype bf16)\n", o.model.c_str());
  }
  // --tokenizer, else the one embedded in the model file (data/tokenizer.h; older files: the
  // folder they name, or a guess from the vocab size).
  const auto tok = !o.tokenizer.empty() ? load_tokenizer(o.tokenizer) : tokenizer_from_metadata(meta, o.model);
  const std::string tok_desc = !o.tokenizer.empty() ? "--tokenizer " + o.tokenizer
                                                    : o.model + ": the model file's tokenizer";
  HIPPO_CHECK(tok->vocab_size() <= cfg.vocab_size, tok_desc, " has ",
              tok->vocab_size(), " tokens, more than the model's vocab_size ", cfg.vocab_size);
  const int V = cfg.padded_vocab();
  const int32_t eot = tok->eot_id();

  // Prompts: every -p, then every --prompt-file; an empty prompt starts from end-of-text.
  std::vector<std::string> texts = o.prompts;
  for (const auto& f : o.prompt_files) texts.push_back(read_whole_file(f, /*allow_pipe=*/true));
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& t : texts) {
    prompts.push_back(tok->encode_with_special(t));
    if (prompts.back().empty() && o.load_state.empty()) prompts.back().push_back(eot);
  }

  ModelState state;
  std::vector<float> logits;  // (batch, V): what follows the tokens consumed so far
  std::vector<size_t> consumed;  // prompt tokens already in the state, per sequence
  auto t0 = Clock::now();
  int64_t prompt_tokens = 0;
  if (!o.load_state.empty()) {
    state = load_state(o.load_state, model, &logits);
    if (!prompts.empty() && state.batch != static_cast<int>(prompts.size())) {
      HIPPO_CHECK(state.batch == 1, "--load-state: the state holds ", state.batch,
                  " sequences but ", prompts.size(), " prompts were given");
      state = repeat_state(state, static_cast<int>(prompts.size()));
      std::vector<float> l;
      for (size_t i = 0; i < prompts.size(); ++i) l.insert(l.end(), logits.begin(), logits.end());
      logits = std::move(l);
    }
    if (prompts.empty()) prompts.resize(static_cast<size_t>(state.batch));
    consumed.assign(prompts.size(), 0);
  } else {
    HIPPO_CHECK(!prompts.empty(), "give a prompt with -p or --prompt-file (or --load-state)");
    // The common length runs as one batched prefill; longer prompts finish by forced steps.
    size_t common = prompts[0].size();
    for (const auto& p : prompts) common = std::min(common, p.size());
    const int B = static_cast<int>(prompts.size()), L = static_cast<int>(common);
    std::vector<int32_t> batch;
    for (const auto& p : prompts) batch.insert(batch.end(), p.begin(), p.begin() + L);
    state = model.new_state(B);
    const float* lg = model.prefill(batch.data(), B, L, state);
    logits.assign(lg, lg + static_cast<int64_t>(B) * V);
    consumed.assign(prompts.size(), common);
    prompt_tokens += static_cast<int64_t>(B) * L;
  }
  if (!o.save_state.empty())
    for (size_t b = 0; b < prompts.size(); ++b)
      HIPPO_CHECK(prompts[b].size() - consumed[b] == prompts[0].size() - consumed[0],
                  "--save-state needs prompts of equal length in tokens (prompt ", b, " has ",
                  prompts[b].size(), ", prompt 0 has ", prompts[0].size(), ")");
  size_t longest = 0;  // prompt tokens still to run, most of any sequence
  for (size_t b = 0; b < prompts.size(); ++b)
    longest = std::max(longest, prompts[b].size() - consumed[b]);
  if (cfg.learned_pos)
    HIPPO_CHECK(state.position + static_cast<int64_t>(longest) + o.n <= cfg.max_position,
                "prompt and -n need ", state.position + static_cast<int64_t>(longest) + o.n,
                " positions, more than the model's max_position ", cfg.max_position);
  HIPPO_CHECK(static_cast<int64_t>(state.batch) * o.samples <= kMaxBatch, "--samples ", o.samples,
              " with a state of ", state.batch, " sequences makes ",
              static_cast<int64_t>(state.batch) * o.samples, " sequences, more than ", kMaxBatch);
  check_state_memory(model, state, static_cast<int64_t>(state.batch) * o.samples, o.samples);
  // The KV caches are not reserved for all -n tokens: they grow as tokens come (doubling,
  // nn/attention.cpp), so memory and time before the first token do not depend on -n.
  // Prompt tokens that every sequence still has (text after a loaded state) go in as forced
  // steps before forking, so the forks share them.
  {
    size_t common = SIZE_MAX;
    for (size_t b = 0; b < prompts.size(); ++b) common = std::min(common, prompts[b].size() - consumed[b]);
    std::vector<int32_t> forced(prompts.size());
    for (size_t i = 0; i < common; ++i) {
      for (size_t b = 0; b < prompts.size(); ++b) forced[b] = prompts[b][consumed[b]++];
      const float* lg = model.step(forced.data(), state);
      logits.assign(lg, lg + static_cast<int64_t>(state.batch) * V);
      prompt_tokens += state.batch;
    }
  }
  if (!o.save_state.empty()) save_state(o.save_state, model, state, logits.data());

  // Forks: every sequence `samples` times (its prompt too).
  if (o.samples > 1) {
    state = repeat_state(state, o.samples);
    std::vector<float> l;
    std::vector<std::vector<int32_t>> p;
    std::vector<size_t> c;
    for (size_t b = 0; b < prompts.size(); ++b)
      for (int j = 0; j < o.samples; ++j) {
        l.insert(l.end(), logits.begin() + b * V, logits.begin() + (b + 1) * V);
        p.push_back(prompts[b]);
        c.push_back(consumed[b]);
      }
    logits = std::move(l);
    prompts = std::move(p);
    consumed = std::move(c);
  }
  const int B = state.batch;

  Sampler sampler({o.temperature, o.top_k, o.top_p}, o.seed);
  const bool stream = B == 1;
  std::vector<std::string> out(static_cast<size_t>(B));
  if (stream && texts.size() == 1) {
    std::fwrite(texts[0].data(), 1, texts[0].size(), stdout);
    std::fflush(stdout);
  }
  std::vector<int> made(static_cast<size_t>(B), 0);
  std::vector<char> done(static_cast<size_t>(B), o.n == 0);
  std::vector<int32_t> next(static_cast<size_t>(B));
  auto t_decode = Clock::now();
  const double prefill_s = seconds_since(t0);
  int64_t decoded = 0;
  for (;;) {
    bool all_done = true;
    for (int b = 0; b < B; ++b) {
      if (consumed[b] < prompts[b].size()) {
        next[b] = prompts[b][consumed[b]++];
        ++prompt_tokens;
        all_done = false;
        continue;
      }
      if (done[b]) {
        next[b] = eot;  // keeps the batch in step; its output is ignored
        continue;
      }
      const int32_t t = sampler.sample(logits.data() + static_cast<int64_t>(b) * V, cfg.vocab_size,
                                         state.position);
      ++made[b];
      ++decoded;
      next[b] = t;
      if (t == eot || t >= tok->vocab_size()) {
        done[b] = true;  // end of text (or an id the tokenizer cannot show)
      } else {
        const std::string piece = tok->decode(std::span<const int32_t>(&t, 1));
        if (stream) {
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
        } else {
          out[b] += piece;
        }
      }
      if (made[b] >= o.n) done[b] = true;
      all_done &= static_cast<bool>(done[b]);
    }
    if (all_done) break;
    const float* lg = model.step(next.data(), state);
    logits.assign(lg, lg + static_cast<int64_t>(B) * V);
  }
  const double decode_s = seconds_since(t_decode);
  if (stream) {
    std::printf("\n");
  } else {
    for (int b = 0; b < B; ++b) {
      std::printf("=== sequence %d (prompt %d, sample %d) ===\n", b, b / o.samples, b % o.samples);
      if (b / o.samples < static_cast<int>(texts.size())) std::printf("%s", texts[b / o.samples].c_str());
      std::printf("%s\n", out[b].c_str());
    }
  }
  std::fflush(stdout);
  std::fprintf(stderr, "[generate] %d sequence(s), prompt %lld tokens in %.2f s, %lld tokens made in "
               "%.2f s (%.1f tokens/s), tokenizer %s\n", B, static_cast<long long>(prompt_tokens),
               prefill_s, static_cast<long long>(decoded), decode_s,
               decode_s > 0 ? decoded / decode_s : 0.0, tok->id().c_str());
}

}  // namespace hippo
