// hippo serve: an OpenAI-compatible HTTP server with continuous batching (apps/serve/,
// docs/serving.md).
#include <memory>

#include "apps/commands.h"
#include "apps/load_options.h"
#include "apps/serve/serve.h"
#include "hippo/error.hpp"

namespace hippo::cli {

void add_serve(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<serve::ServeOptions>();
  auto* c = app.add_subcommand("serve", "OpenAI-compatible HTTP server (continuous batching)");
  c->add_option("-m,--model", o->model, "Weights or checkpoint (.safetensors)")->required();
  c->add_option("--tokenizer", o->tokenizer,
                "byte | gpt2:DIR (default: the one embedded in the model file)");
  add_kv_cache_option(c, o->kv_cache);
  add_q8_layout_option(c, o->q8_layout);
  add_bf16_layout_option(c, o->bf16_layout);
  c->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  c->add_option("--port", o->port, "Port (0: any free port, printed at start)")->capture_default_str();
  c->add_option("--parallel", o->parallel, "Sequences decoding at once (one batched step)")
      ->capture_default_str();
  c->add_option("--max-queue", o->max_queue, "Sequences waiting beyond --parallel; more get 503")
      ->capture_default_str();
  c->add_option("--max-state-mb", o->max_state_mb,
                "Admit new sequences while the active states hold less than this")
      ->capture_default_str();
  c->add_option("--prefix-cache", o->cache_entries,
                "Recent states kept for prompts that extend them (0: off)")
      ->capture_default_str();
  c->add_option("--api-key", o->api_key, "Require 'Authorization: Bearer KEY'");
  c->add_option("-t,--threads", o->threads, "Kernel threads (0: all cores)")->capture_default_str();
  c->add_option("--http-threads", o->http_threads,
                "Connection threads (0: 4 x --parallel + --max-queue, at least 16)")
      ->capture_default_str();
  c->add_option("--state-dir", o->state_dir, "Folder for saved sessions (request field session_id)");
  c->add_option("--max-tokens-limit", o->max_tokens, "Largest max_tokens a request may ask")
      ->capture_default_str();
  c->add_option("--max-prompt-tokens", o->max_prompt_tokens, "Longest prompt in tokens")
      ->capture_default_str();
  c->callback([&run, o] {
    run = [o] {
#ifdef HIPPO_HAVE_SERVE
      return serve::run_server(*o);
#else
      throw Error("hippo serve: this build has no HTTP library (install libcpp-httplib-dev and "
                  "configure again)");
      return 1;
#endif
    };
  });
}

}  // namespace hippo::cli
