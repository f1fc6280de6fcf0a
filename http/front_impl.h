// The HTTP front's insides, shared by its two files: http/server.cc (each
// request: routing, webhooks, the console, health and metrics) and
// http/front_run.cc (listening, signals, the drain, the setters).
// Private to http/.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "console/console.h"
#include "console/remote_read.h"
#include "console/shared_keys.h"
#include "http/answer_queue.h"
#include "http/front_metrics.h"
#include "http/restinio_traits.h"
#include "http/server.h"
#include "util/crypto.h"
#include "util/json.h"
#include "util/logging.h"
#include "util/strings.h"

namespace dfm {

using HttpServer = restinio::http_server_t<HttpTraits>;

// An io_context whose pending handlers can be destroyed before it is: the
// handlers of idle keep-alive connections (a proxy keeps some open) hold
// those connections, which point into their server's connection limiter,
// so they must go while the servers still exist.
struct IoContext : asio::io_context {
  using asio::execution_context::shutdown;
};

// Requests waiting for an answer from another thread (the log's writer,
// the console's workers), by ticket. What answers holds the ticket, not
// the request, so Run's end lets every waiting request (and so its
// connection, which points into its server) go while the servers exist,
// however late the log answers after the grace period.
class ParkedRequests {
 public:
  uint64_t Park(restinio::request_handle_t req) {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_) return 0;
    waiting_.emplace(++last_, std::move(req));
    return last_;
  }
  // The request parked under `ticket`, taken; null once Close() ran.
  restinio::request_handle_t Take(uint64_t ticket) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = waiting_.find(ticket);
    if (it == waiting_.end()) return nullptr;
    restinio::request_handle_t req = std::move(it->second);
    waiting_.erase(it);
    return req;
  }
  // Lets every parked request go; later ones are not parked.
  void Close() {
    std::unordered_map<uint64_t, restinio::request_handle_t> dropped;
    std::lock_guard<std::mutex> lk(mu_);
    closed_ = true;
    dropped.swap(waiting_);
  }

 private:
  std::mutex mu_;
  bool closed_ = false;
  uint64_t last_ = 0;
  std::unordered_map<uint64_t, restinio::request_handle_t> waiting_;
};

struct HttpFront::Impl {
  Impl(const Config& c, EventLog* l, const Clock* k)
      : config(c),
        log(l),
        clock(k),
        ingestor(std::make_shared<const WebhookIngestor>(c)),
        metrics(ingestor->Routes()),
        logger(Logger("http")),
        peers(std::make_shared<PeerConnections>(c.server().max_connections_per_ip,
                                                c.server().trusted_proxies)),
        guard(std::make_shared<ConnectionGuard>(peers)),
        limiter(c.server().rate_limit_per_ip),
        console(std::make_unique<Console>(c, l, k, &console_counters)) {}

  const Config& config;
  EventLog* log;
  const Clock* clock;
  // Replaced whole by a configuration reload (Reload); each request uses
  // the one it found when it came.
  std::shared_ptr<const WebhookIngestor> ingestor;
  std::shared_ptr<const WebhookIngestor> Ingestor() const { return std::atomic_load(&ingestor); }
  std::function<void()> on_sighup;  // the reload a SIGHUP asks for
  FrontMetrics metrics;
  std::shared_ptr<spdlog::logger> logger;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  // Per client (http/client_limits.h): connections per peer address, and
  // requests a second per client address.
  std::shared_ptr<PeerConnections> peers;
  std::shared_ptr<ConnectionGuard> guard;
  RequestRateLimiter limiter;
  // The status page, the keyed API and the admin endpoints
  // (console/console.h).
  ConsoleCounters console_counters;
  std::unique_ptr<Console> console;
  std::mutex console_mu;         // guards `console` starting and ending against other nodes' reads
  bool console_started = false;  // with console_mu

  IoContext ioctx;
  // Appends' answers, from the log's writer to the I/O thread a group
  // commit at a time (http/answer_queue.h).
  AnswerQueue answers{ioctx};
  ParkedRequests parked;
  // A console request's place in `parked`, shared by its responder's
  // copies. The first call of the responder answers; if the last copy goes
  // without one, the request is answered 503 (both by PostConsoleAnswer,
  // on the I/O thread).
  struct Ticket {
    Ticket(Impl* f, uint64_t n, std::string id) : front(f), no(n), request_id(std::move(id)) {}
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() {
      if (!answered.load()) front->PostConsoleAnswer(no, request_id, NoAnswer());
    }
    static ApiResponse NoAnswer() {
      ApiResponse a;
      a.status = 503;
      a.body = R"({"error":"no_answer","detail":"the request got no answer; retry"})";
      return a;
    }
    Impl* front;
    uint64_t no;
    std::string request_id;
    std::atomic<bool> answered{false};
  };
  // Posts `a` for the console request parked as `no` to the I/O thread,
  // which answers it (if it is still parked) and counts it out of
  // in_flight.
  void PostConsoleAnswer(uint64_t no, std::string request_id, ApiResponse a);
  std::unique_ptr<HttpServer> server;
  std::unique_ptr<HttpServer> admin_server;  // only with server.admin_listen
  std::atomic<bool> draining{false};
  std::atomic<int64_t> in_flight{0};
  std::atomic<uint64_t> accepted{0}, duplicates{0}, rejected{0}, unavailable{0}, rate_limited{0};

  // `admin_listener`: the request came to server.admin_listen. With that
  // listener configured, admin paths are answered only there and
  // webhooks only on the main one; the health endpoints on both.
  restinio::request_handling_status_t Handle(const restinio::request_handle_t& req,
                                             bool admin_listener);
  void Respond(const restinio::request_handle_t& req, const std::string& request_id, int status,
               std::string body, bool close = false, int retry_after_s = 0,
               const char* content_type = "application/json",
               const std::vector<std::pair<std::string, std::string>>* headers = nullptr);
  void HandleWebhook(const restinio::request_handle_t& req, const std::string& request_id);
  // True when the request's client is within server.rate_limit_per_ip;
  // otherwise answers it (a status its sender retries, with Retry-After).
  bool WithinClientRate(const restinio::request_handle_t& req, const std::string& request_id,
                        std::string_view path);
  // Hands a console path to the console and answers what it answers.
  void ServeConsole(const restinio::request_handle_t& req, const std::string& request_id,
                    bool admin_listener);
  // What a log line about an append says: "tenant=… system=… <more>",
  // formatted only when a line is written.
  struct LogFields {
    std::string tenant, system, more;
    bool info = false;  // a success is logged at info (an admin's act), else at debug
    std::optional<FrontMetrics::Route> webhook;  // a webhook's: counted in dfm_webhooks_total
    std::string Format() const {
      std::string f = "tenant=" + tenant;
      if (!system.empty()) f += " system=" + system;
      if (!more.empty()) f += " " + more;
      return f;
    }
  };
  // Appends `draft` and answers once it is durable: 200 {"status":
  // "accepted"|"duplicate", "event_id", "seq"} plus what `extra` adds (or
  // `recorded`, when given: the vendor's own answer), or
  // `unavailable_status` when the log cannot take it (the sender retries).
  void AppendAndAnswer(const restinio::request_handle_t& req, const std::string& request_id,
                       EventDraft draft, int unavailable_status, LogFields fields,
                       std::function<void(JsonObject*)> extra = {},
                       std::shared_ptr<const HandshakeAnswer> recorded = nullptr);
  // The append's answer, on the I/O thread (`answers` brings it there);
  // `append_us`: from handing it to the log to the log's callback.
  void Answer(const restinio::request_handle_t& req, const std::string& request_id,
              int unavailable_status, int64_t append_us, const LogFields& fields,
              const std::function<void(JsonObject*)>& extra, const HandshakeAnswer* recorded,
              const Status& s, const std::vector<AppendOutcome>& o);
  std::function<void(uint64_t, JsonObject*)> health_parts;    // more parts of GET /v1/health
  std::function<void(uint64_t, MetricsText*)> metrics_parts;  // more families of GET /metrics
  std::function<std::string()> cluster_metrics;               // GET /metrics?scope=cluster
  std::function<void(JsonObject*)> health_services;           // more of GET /v1/health's services
  std::string MetricsBody() const;
  std::string HealthJson(bool* ready) const;
  void BeginDrain();
  void WaitDrained(std::chrono::steady_clock::time_point deadline);

  // Run's steps (http/front_run.cc). OpenListeners: server.listen, then
  // server.admin_listen when set; on failure none stays open.
  Status OpenListeners();
  void CloseListeners();
  // A listener's settings: `admin` for server.admin_listen.
  restinio::server_settings_t<HttpTraits> ListenerSettings(const std::string& host, uint16_t port,
                                                           int max_connections, bool admin);
  Status StartConsole();
  // Answers until the drain stops the I/O threads (server.threads of them,
  // this one among them), SIGTERM/SIGINT starting it and SIGHUP reloading
  // when `handle_signals`; `listening` is cleared once they stopped. The
  // signal sets stay (cancelled) until Run's end.
  void Serve(bool handle_signals, std::atomic<bool>* listening);
  std::unique_ptr<asio::signal_set> signals, hangups;
  std::function<void(const asio::error_code&, int)> on_hup;  // outlives every wait on `hangups`
  // After Serve: the console ended, every connection and waiting request let go.
  void Release();
};

}  // namespace dfm
