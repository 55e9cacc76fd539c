// hippo serve: loads the model, starts the scheduler and the HTTP server, and on SIGTERM or
// SIGINT finishes the requests in flight before returning.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include <httplib.h>

#include "apps/serve/routes.h"
#include "apps/serve/serve.h"

namespace hippo::serve {

namespace {

// cpp-httplib 0.11 listens with a backlog of 5: a burst of connections beyond that (32 clients
// connecting at once) is reset by the kernel. Its listening socket is private, so it is found
// among this process's descriptors (listening, bound to `port`) and listen() is called again
// with a larger backlog, which Linux allows on a listening socket.
void widen_listen_backlog(int port) {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return;
  while (const dirent* e = readdir(d)) {
    const int fd = std::atoi(e->d_name);
    if (fd <= 2) continue;
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    int p = -1;
    if (addr.ss_family == AF_INET) p = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    if (addr.ss_family == AF_INET6) p = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    if (p == port) ::listen(fd, SOMAXCONN);
  }
  closedir(d);
}

}  // namespace

int run_server(const ServeOptions& o) {
  if (o.port < 0 || o.port > 65535) throw Error("--port must be in [0, 65535]");
  if (o.parallel < 1 || o.parallel > 1024) throw Error("--parallel must be in [1, 1024]");
  if (o.max_queue < 0 || o.max_queue > 1 << 20) throw Error("--max-queue must be in [0, 1048576]");
  if (o.threads < 0 || o.threads > 1024) throw Error("-t/--threads must be in [0, 1024]");
  if (o.max_state_mb < 1) throw Error("--max-state-mb must be >= 1");
  if (o.max_tokens < 0 || o.max_tokens > 1'000'000) throw Error("--max-tokens-limit must be in [0, 1000000]");
  if (o.max_prompt_tokens < 1 || o.max_prompt_tokens > 10'000'000)
    throw Error("--max-prompt-tokens must be in [1, 10000000]");

  // SIGTERM/SIGINT go to one thread that waits for them (blocked here before any thread
  // starts, so every later thread inherits the mask).
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that went away is a failed write, not a dead server

  set_num_threads(o.threads);
  LoadOptions lo;
  lo.tokenizer = o.tokenizer;
  lo.kv_cache = o.kv_cache;
  lo.q8_layout = o.q8_layout;
  lo.bf16_layout = o.bf16_layout;
  auto model = Model::load(o.model, lo);
  StateStore store(o.state_dir);
  SchedulerOptions so;
  so.parallel = o.parallel;
  so.max_queue = o.max_queue;
  so.max_state_bytes = o.max_state_mb << 20;
  so.cache_entries = o.cache_entries;
  Scheduler scheduler(model, so, &store);

  ServerContext ctx{model, scheduler, store};
  ctx.api_key = o.api_key;
  ctx.limits.max_tokens = o.max_tokens;
  ctx.limits.max_prompt_tokens = o.max_prompt_tokens;
  ctx.model_name = model_name_of(o.model);
  ctx.model_limits = model_limits_of(*model);

  httplib::Server svr;
  const int http_threads = o.http_threads > 0 ? o.http_threads : std::max(16, 4 * o.parallel + o.max_queue);
  svr.new_task_queue = [http_threads] { return new httplib::ThreadPool(static_cast<size_t>(http_threads)); };
  svr.set_payload_max_length(static_cast<size_t>(ctx.limits.max_body_bytes));
  svr.set_keep_alive_timeout(2);
  svr.set_read_timeout(30);
  svr.set_write_timeout(30);
  register_routes(svr, ctx);

  int port = o.port;
  if (port == 0) {
    port = svr.bind_to_any_port(o.host);
    if (port < 0) throw Error("cannot listen on " + o.host + " (any port)");
  } else if (!svr.bind_to_port(o.host, port)) {
    throw Error("cannot listen on " + o.host + ":" + std::to_string(port) + " (in use?)");
  }
  widen_listen_backlog(port);
  std::fprintf(stderr, "hippo serve: %s (%s, %lld parameters) on http://%s:%d (parallel %d, queue %d)\n",
               ctx.model_name.c_str(), model->info().layers.c_str(),
               static_cast<long long>(model->info().num_params), o.host.c_str(), port, o.parallel,
               o.max_queue);
  std::fflush(stderr);

  std::thread signals([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    std::fprintf(stderr, "hippo serve: signal %d: finishing %d request(s) in flight\n", sig,
                 ctx.in_flight.load());
    ctx.draining = true;  // new generation requests get 503 from now on
    while (ctx.in_flight.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    svr.stop();
  });
  const bool ok = svr.listen_after_bind();
  const bool by_signal = ctx.draining;
  if (!by_signal) {  // the server failed by itself: wake the signal thread and end it
    ctx.draining = true;
    pthread_kill(signals.native_handle(), SIGTERM);
  }
  signals.join();
  scheduler.drain();
  std::fprintf(stderr, "hippo serve: stopped\n");
  return ok || by_signal ? 0 : 1;
}

}  // namespace hippo::serve
