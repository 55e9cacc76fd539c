#include "apps/serve/routes.h"

#include <malloc.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <random>
#include <span>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "apps/serve/api_error.h"
#include "apps/serve/completion_reply.h"
#include "apps/serve/generation.h"
#include "apps/serve/utf8.h"
#include "apps/serve/web_page.h"

namespace hippo::serve {

using nlohmann::json;

std::string model_name_of(const std::string& path) {
  return std::filesystem::path(path).stem().string();
}

ModelLimits model_limits_of(const Model& model) {
  ModelLimits m;
  m.vocab_size = std::min(model.info().vocab_size, model.tokenizer().vocab_size());
  const json cfg = json::parse(model.info().config_json, nullptr, false);
  if (cfg.is_object() && cfg.value("learned_pos", false)) m.max_position = cfg.value("max_position", 0);
  return m;
}

namespace {

void reply_error(httplib::Response& res, int status, const std::string& type, const std::string& message,
                 const std::string& param = {}) {
  res.status = status;
  res.set_content(error_body(status, type, message, param).dump(), "application/json");
}

void reply_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(error_body(e).dump(), "application/json");
}

void reply_json(httplib::Response& res, const json& j) { res.set_content(j.dump(), "application/json"); }

void overloaded(httplib::Response& res, const std::string& why) {
  res.set_header("Retry-After", "1");
  reply_error(res, 503, "server_overloaded_error", why);
}

uint64_t fresh_seed() {
  static std::atomic<uint64_t> n{std::random_device{}()};
  return (n.fetch_add(1) + 1) * 0x9E3779B97F4A7C15ULL;
}

// Counts a generation request as in flight for as long as it lives (SIGTERM waits for them).
struct InFlight {
  explicit InFlight(ServerContext& c) : ctx(c) { ++ctx.in_flight; }
  ~InFlight() { --ctx.in_flight; }
  ServerContext& ctx;
};

void handle_generation(const httplib::Request& req, httplib::Response& res, ServerContext& ctx, bool chat) {
  const Tokenizer& tok = ctx.model->tokenizer();
  CompletionRequest r = chat ? parse_chat_request(req.body, tok, ctx.limits, ctx.model_limits)
                             : parse_completion_request(req.body, tok, ctx.limits, ctx.model_limits);
  if (ctx.draining) return overloaded(res, "the server is shutting down");
  if (!r.session_id.empty() && !ctx.store.enabled())
    throw bad_request("session_id", "session_id needs the server started with --state-dir");
  auto in_flight = std::make_shared<InFlight>(ctx);
  const bool stream = r.stream;
  auto g = std::make_shared<Generation>(std::move(r), ctx.model, ctx.scheduler, fresh_seed());
  if (!g->submit()) return overloaded(res, "too many requests are queued; retry later");
  ReplyMeta meta;
  meta.id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(++ctx.requests);
  meta.created = static_cast<int64_t>(std::time(nullptr));
  meta.model = g->request().model.empty() ? ctx.model_name : g->request().model;
  if (!stream) {
    WholeReply whole(*g, tok);
    while (!g->done()) whole.add(g->poll(std::chrono::milliseconds(100)));
    if (!g->error().empty()) return reply_error(res, 500, "server_error", g->error());
    return reply_json(res, whole.json(meta));
  }
  auto started = std::make_shared<std::vector<char>>(static_cast<size_t>(g->choices()), 0);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [g, meta, started, &tok](size_t, httplib::DataSink& sink) {
        auto send = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
        if (!sink.is_writable()) {
          g->cancel();
          return false;
        }
        for (const Delta& d : g->poll(std::chrono::milliseconds(50))) {
          const bool first = !(*started)[static_cast<size_t>(d.index)];
          if (d.text.empty() && d.finish_reason.empty() && d.tokens.empty() && d.echo_tokens.empty() &&
              !(first && g->request().chat))
            continue;
          (*started)[static_cast<size_t>(d.index)] = 1;
          if (!send(stream_chunk(d, *g, tok, meta, first))) {
            g->cancel();  // the client is gone: free its slots
            return false;
          }
        }
        if (g->done()) {
          if (!g->error().empty()) send(sse(error_body(500, "server_error", g->error())));
          send(stream_usage_chunk(*g, meta));
          send(kStreamEnd);
          sink.done();
        }
        return true;
      },
      [g, in_flight](bool success) {
        if (!success) g->cancel();
      });
}

// Bytes malloc has handed out and not got back (glibc): unlike RSS, free-but-kept memory and
// fragmentation do not count, so a leak shows as growth from one idle moment to the next.
int64_t heap_in_use() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 m = mallinfo2();
  return static_cast<int64_t>(m.uordblks + m.hblkhd);
#else
  return -1;
#endif
}

bool authorized(const httplib::Request& req, const ServerContext& ctx) {
  if (ctx.api_key.empty() || req.path == "/" || req.path == "/health") return true;
  const std::string h = req.get_header_value("Authorization");
  const std::string want = "Bearer " + ctx.api_key;
  // Constant-time comparison: the time taken does not tell how much of a guessed key is right.
  if (h.size() != want.size()) return false;
  unsigned diff = 0;
  for (size_t i = 0; i < h.size(); ++i) diff |= static_cast<unsigned>(h[i] ^ want[i]);
  return diff == 0;
}

// Runs a handler, turning every failure into an OpenAI error object.
template <class F>
httplib::Server::Handler guarded(F f) {
  return [f](const httplib::Request& req, httplib::Response& res) {
    try {
      f(req, res);
    } catch (const ApiError& e) {
      reply_error(res, e);
    } catch (const hippo::Error& e) {
      reply_error(res, 400, "invalid_request_error", e.what());
    } catch (const std::bad_alloc&) {
      reply_error(res, 503, "server_error", "out of memory");
    } catch (const std::exception& e) {
      reply_error(res, 500, "server_error", e.what());
    }
  };
}

}  // namespace

void register_routes(httplib::Server& svr, ServerContext& ctx) {
  ctx.created = static_cast<int64_t>(std::time(nullptr));
  svr.set_pre_routing_handler([&ctx](const httplib::Request& req, httplib::Response& res) {
    if (authorized(req, ctx)) return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("WWW-Authenticate", "Bearer");
    reply_error(res, 401, "authentication_error",
                req.has_header("Authorization") ? "invalid API key" : "missing API key (Authorization: Bearer ...)",
                "");
    return httplib::Server::HandlerResponse::Handled;
  });
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404)
      reply_error(res, 404, "not_found_error", "no route " + req.method + " " + req.path);
    else if (res.status == 413)
      reply_error(res, 413, "invalid_request_error", "the request body is too large");
    else
      reply_error(res, res.status, "invalid_request_error", "HTTP error " + std::to_string(res.status));
  });

  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kWebPage, "text/html; charset=utf-8");
  });
  svr.Get("/health", [&ctx](const httplib::Request&, httplib::Response& res) {
    const SchedulerStats s = ctx.scheduler.stats();
    if (ctx.draining) res.status = 503;
    reply_json(res, {{"status", ctx.draining ? "draining" : "ok"},
                     {"model", ctx.model_name},
                     {"active", s.active},
                     {"queued", s.queued},
                     {"state_bytes", s.state_bytes},
                     {"cache_entries", s.cache_entries},
                     {"steps", s.steps},
                     {"tokens", s.tokens},
                     {"heap_bytes", heap_in_use()}});
  });
  auto model_obj = [&ctx] {
    return json{{"id", ctx.model_name}, {"object", "model"}, {"created", ctx.created}, {"owned_by", "hippo"}};
  };
  svr.Get("/v1/models", [model_obj](const httplib::Request&, httplib::Response& res) {
    reply_json(res, {{"object", "list"}, {"data", json::array({model_obj()})}});
  });
  svr.Get(R"(/v1/models/(.+))", [model_obj, &ctx](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != ctx.model_name)
      return reply_error(res, 404, "not_found_error", "no model " + std::string(req.matches[1]), "model");
    reply_json(res, model_obj());
  });
  svr.Post("/v1/completions", guarded([&ctx](const httplib::Request& req, httplib::Response& res) {
             handle_generation(req, res, ctx, /*chat=*/false);
           }));
  svr.Post("/v1/chat/completions", guarded([&ctx](const httplib::Request& req, httplib::Response& res) {
             handle_generation(req, res, ctx, /*chat=*/true);
           }));
  svr.Post("/tokenize", guarded([&ctx](const httplib::Request& req, httplib::Response& res) {
             reply_json(res, {{"tokens", parse_tokenize_request(req.body, ctx.model->tokenizer(), ctx.limits)}});
           }));
  svr.Post("/detokenize", guarded([&ctx](const httplib::Request& req, httplib::Response& res) {
             const auto ids = parse_detokenize_request(req.body, ctx.limits, ctx.model_limits);
             reply_json(res, {{"content", valid_utf8(ctx.model->tokenizer().decode(ids))}});
           }));
}

}  // namespace hippo::serve
