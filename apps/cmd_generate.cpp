// hippo generate: text from a model (hippo::generate, include/hippo/generate.hpp).
#include <memory>

#include "apps/commands.h"
#include "apps/load_options.h"
#include "hippo/generate.hpp"

namespace hippo::cli {

void add_bench_generate(CLI::App& bench, std::function<int()>& run);

void add_generate(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<GenerateOptions>();
  auto* c = app.add_subcommand("generate", "Generate text from a model (recurrent decoding)");
  c->add_option("-m,--model", o->model, "Weights or checkpoint (.safetensors)")->required();
  c->add_option("-p,--prompt", o->prompts, "Prompt text; several -p run as a batch");
  c->add_option("--prompt-file", o->prompt_files, "File whose text is a prompt (repeatable)");
  c->add_option("-n,--tokens", o->n, "Tokens to generate per sequence")->capture_default_str();
  c->add_option("--samples", o->samples, "Continuations per prompt (the prompt state is forked)")
      ->capture_default_str();
  c->add_option("--temp,--temperature", o->temperature, "Temperature (0: greedy)")
      ->capture_default_str();
  c->add_option("--top-k", o->top_k, "Keep the k most likely tokens (0: all)")->capture_default_str();
  c->add_option("--top-p", o->top_p, "Nucleus: keep the fewest tokens with mass >= p")
      ->capture_default_str();
  c->add_option("-s,--seed", o->seed, "Sampling seed")->capture_default_str();
  c->add_option("-t,--threads", o->threads, "Threads (0: all cores)")->capture_default_str();
  c->add_option("--tokenizer", o->tokenizer,
                "byte | gpt2:DIR (default: the one embedded in the model file)");
  add_kv_cache_option(c, o->kv_cache);
  add_q8_layout_option(c, o->q8_layout);
  add_bf16_layout_option(c, o->bf16_layout);
  c->add_flag("--fast-bf16", o->fast_bf16,
              "With bf16 weights: round decoding's activations to bf16 and multiply pairs with "
              "VDPBF16PS, as llama.cpp and PyTorch bf16 autocast do (faster batched decoding; "
              "logits move by ~1e-3 relative). Default: exact fp32 activations");
  c->add_option("--save-state", o->save_state, "Save the state after the prompt to FILE");
  c->add_option("--load-state", o->load_state,
                "Continue from a saved state (-p text, if any, is appended to it)");
  c->callback([&run, o] { run = [o] { generate(*o); return 0; }; });
  // `bench generate` joins the bench command when it exists (registered before this one).
  try {
    add_bench_generate(*app.get_subcommand("bench"), run);
  } catch (const CLI::OptionNotFound&) {
  }
}

}  // namespace hippo::cli
