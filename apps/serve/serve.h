// `hippo serve`: an OpenAI-compatible HTTP server over one model (docs/serving.md). This
// header is plain C++ (no HTTP library), so the command table can include it.
#pragma once
#include <cstdint>
#include <string>

namespace hippo::serve {

struct ServeOptions {
  std::string model;
  std::string tokenizer;           // overrides the model file's ("byte", "gpt2:DIR")
  std::string kv_cache = "auto";   // attention's KV cache dtype (LoadOptions::kv_cache)
  std::string q8_layout = "auto";  // q8 weights' byte order (LoadOptions::q8_layout)
  std::string bf16_layout = "auto";  // bf16 weights' element order (LoadOptions::bf16_layout)
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port (the chosen one is printed)
  int parallel = 8;                // sequences decoding at once (one batched step)
  int max_queue = 64;              // sequences waiting beyond that; more: 503
  int64_t max_state_mb = 4096;     // admit while active states hold less than this
  int cache_entries = 16;          // prefix cache (0: off)
  std::string api_key;             // required as "Authorization: Bearer KEY" when set
  int threads = 0;                 // kernel threads (0: all cores)
  int http_threads = 0;            // connection threads (0: 4 x parallel + max_queue, >= 16)
  std::string state_dir;           // saved sessions (session_id); empty: off
  int max_tokens = 4096;           // per-request limits (400 beyond)
  int max_prompt_tokens = 8192;
};

// Serves until SIGTERM or SIGINT, then finishes the requests in flight and returns 0.
int run_server(const ServeOptions& options);

}  // namespace hippo::serve
