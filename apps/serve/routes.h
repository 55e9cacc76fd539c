// The HTTP routes of hippo serve and what they share.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "apps/serve/limits.h"
#include "apps/serve/request.h"
#include "apps/serve/scheduler.h"
#include "apps/serve/state_store.h"
#include "hippo/hippo.hpp"

namespace httplib {
class Server;
}

namespace hippo::serve {

struct ServerContext {
  ServerContext(std::shared_ptr<const Model> m, Scheduler& s, const StateStore& st)
      : model(std::move(m)), scheduler(s), store(st) {}
  std::shared_ptr<const Model> model;
  Scheduler& scheduler;
  const StateStore& store;
  std::string api_key;
  Limits limits;
  ModelLimits model_limits;
  std::string model_name;
  int64_t created = 0;
  std::atomic<int> in_flight{0};       // generation requests being answered
  std::atomic<bool> draining{false};   // after SIGTERM: new generation requests get 503
  std::atomic<uint64_t> requests{0};
};

// "model" for "/path/to/model.safetensors".
std::string model_name_of(const std::string& path);
ModelLimits model_limits_of(const Model& model);

// GET / (the web page), /health, /v1/models; POST /v1/completions, /v1/chat/completions,
// /tokenize, /detokenize; OpenAI error objects for everything that fails.
void register_routes(httplib::Server& svr, ServerContext& ctx);

}  // namespace hippo::serve
