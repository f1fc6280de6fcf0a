#include "http/server.h"

#include "http/restinio_traits.h"

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
#include "util/crypto.h"
#include "util/json.h"
#include "util/logging.h"
#include "util/strings.h"

namespace dfm {

namespace {

using Traits = HttpTraits;
using Server = restinio::http_server_t<Traits>;

const char* kVersion = "0.1.0";

std::string ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 303: return "See Other";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string ErrorJson(const std::string& error, const std::string& detail) {
  return JsonObject().Str("error", error).Str("detail", detail).Finish();
}

}  // namespace

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
  std::unique_ptr<Server> server;
  std::unique_ptr<Server> admin_server;  // only with server.admin_listen
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
  // "accepted"|"duplicate", "event_id", "seq"} plus what `extra` adds, or
  // `unavailable_status` when the log cannot take it (the sender retries).
  void AppendAndAnswer(const restinio::request_handle_t& req, const std::string& request_id,
                       EventDraft draft, int unavailable_status, LogFields fields,
                       std::function<void(JsonObject*)> extra = {});
  // The append's answer, on the I/O thread (`answers` brings it there);
  // `append_us`: from handing it to the log to the log's callback.
  void Answer(const restinio::request_handle_t& req, const std::string& request_id,
              int unavailable_status, int64_t append_us, const LogFields& fields,
              const std::function<void(JsonObject*)>& extra, const Status& s,
              const std::vector<AppendOutcome>& o);
  std::function<void(uint64_t, JsonObject*)> health_parts;  // more parts of GET /v1/health
  std::function<void(uint64_t, MetricsText*)> metrics_parts;  // more families of GET /metrics
  std::function<std::string()> cluster_metrics;               // GET /metrics?scope=cluster
  std::function<void(JsonObject*)> health_services;           // more of GET /v1/health's services
  std::string MetricsBody() const;
  std::string HealthJson(bool* ready) const;
  void BeginDrain();
  void WaitDrained(std::chrono::steady_clock::time_point deadline);
};

HttpFront::HttpFront(const Config& config, EventLog* log, const Clock* clock)
    : impl_(std::make_unique<Impl>(config, log, clock)) {}

HttpFront::~HttpFront() = default;

void HttpFront::Impl::Respond(const restinio::request_handle_t& req, const std::string& request_id,
                              int status, std::string body, bool close, int retry_after_s,
                              const char* content_type,
                              const std::vector<std::pair<std::string, std::string>>* headers) {
  auto resp = req->create_response(restinio::http_status_line_t{
      restinio::http_status_code_t{static_cast<std::uint16_t>(status)}, ReasonPhrase(status)});
  resp.append_header(restinio::http_field::content_type, content_type)
      .append_header("X-Request-ID", request_id);
  if (headers)
    for (const auto& [name, value] : *headers) resp.append_header(name, value);
  if (retry_after_s > 0) resp.append_header("Retry-After", std::to_string(retry_after_s));
  if (close) resp.connection_close();
  // A handshake's text/plain answer is the vendor's challenge, byte for byte.
  const bool exact = std::string_view(content_type).substr(0, 10) == "text/plain" &&
                     std::string_view(content_type).find("version=") == std::string_view::npos;
  if (!exact && (body.empty() || body.back() != '\n')) body.push_back('\n');
  resp.set_body(std::move(body));
  resp.done();
}

restinio::request_handling_status_t HttpFront::Impl::Handle(const restinio::request_handle_t& req,
                                                            bool admin_listener) {
  const auto& h = req->header();
  std::string request_id = ResolveRequestId(h.get_field_or("X-Request-ID", ""));
  std::string_view path = h.path();
  bool is_get = h.method() == restinio::http_method_get();

  if (is_get && path == "/healthz") {
    Respond(req, request_id, 200, R"({"status":"alive"})");
    return restinio::request_accepted();
  }
  if (is_get && path == "/readyz") {
    // The whole health document only when it is sent: probes mostly see 200.
    bool ready = log->Health().ok() && !draining.load();
    if (ready) {
      Respond(req, request_id, 200, R"({"status":"ready"})");
    } else {
      std::string body = HealthJson(&ready);
      Respond(req, request_id, ready ? 200 : 503, ready ? R"({"status":"ready"})" : body);
    }
    return restinio::request_accepted();
  }
  if (is_get && path == "/v1/health") {
    bool ready = false;
    std::string body = HealthJson(&ready);
    Respond(req, request_id, 200, body);
    return restinio::request_accepted();
  }
  // Prometheus scrapes it where the admin endpoints are when that
  // listener is set (docs/metrics.md); while draining too.
  if (path == "/metrics" && admin_listener == (config.server().admin_listen_port != 0)) {
    const std::string_view scope = h.query();
    if (!is_get) {
      Respond(req, request_id, 405, ErrorJson("method_not_allowed", "use GET"));
    } else if (!scope.empty() && scope != "scope=node" && scope != "scope=cluster") {
      Respond(req, request_id, 400, ErrorJson("bad_query", "GET /metrics takes scope=node or scope=cluster"));
    } else {
      // A single node is its whole cluster: scope=cluster answers as scope=node.
      std::string body = scope == "scope=cluster" && cluster_metrics ? cluster_metrics() : MetricsBody();
      Respond(req, request_id, 200, std::move(body), false, 0, "text/plain; version=0.0.4; charset=utf-8");
    }
    return restinio::request_accepted();
  }
  const bool admin_path = path.substr(0, 10) == "/v1/admin/";
  if (draining.load()) {
    if (!admin_path) metrics.CountWebhook(path, "shutting_down");
    Respond(req, request_id, 503, ErrorJson("shutting_down", "the service is shutting down; retry"),
            true, 5);
    return restinio::request_accepted();
  }
  // Its parser discarded the body past the limit (http/restinio_traits.h).
  if (h.has_field(kBodyTooLargeMarker)) {
    rejected.fetch_add(1);
    if (!admin_path) metrics.CountWebhook(path, "body_too_large");
    const std::string declared(h.get_field(kBodyTooLargeMarker));
    Respond(req, request_id, 413,
            ErrorJson("body_too_large",
                      (declared == "chunked" ? std::string("body is larger")
                                             : "body is " + declared + " bytes") +
                          "; the limit is " + std::to_string(config.server().max_body_bytes)),
            /*close=*/true);
    return restinio::request_accepted();
  }
  if (!WithinClientRate(req, request_id, path)) {
    if (!admin_path) metrics.CountWebhook(path, "rate_limited");
    return restinio::request_accepted();
  }
  if (Console::Serves(path)) {
    ServeConsole(req, request_id, admin_listener);
    return restinio::request_accepted();
  }
  if (config.server().admin_listen_port != 0 && admin_listener) {
    Respond(req, request_id, 404, ErrorJson("not_found", "no such endpoint on this listener"));
    return restinio::request_accepted();
  }
  HandleWebhook(req, request_id);
  return restinio::request_accepted();
}

bool HttpFront::Impl::WithinClientRate(const restinio::request_handle_t& req,
                                       const std::string& request_id, std::string_view path) {
  if (config.server().rate_limit_per_ip <= 0) return true;
  const std::string client =
      ClientAddress(req->remote_endpoint().address().to_string(),
                    req->header().get_field_or("X-Forwarded-For", ""), config.server().trusted_proxies);
  int retry_after_s = 1;
  if (client.empty() || limiter.Take(client, clock->NowMicros(), &retry_after_s)) return true;
  rate_limited.fetch_add(1);
  Respond(req, request_id, Ingestor()->RetryStatusFor(path),
          ErrorJson("rate_limited", "more than " +
                                        std::to_string(config.server().rate_limit_per_ip) +
                                        " requests a second from this address; retry later"),
          false, retry_after_s);
  return false;
}

void HttpFront::Impl::ServeConsole(const restinio::request_handle_t& req,
                                   const std::string& request_id, bool admin_listener) {
  const auto& h = req->header();
  ApiRequest r;
  r.method = std::string(h.method().c_str());
  r.path = std::string(h.path());
  r.query = std::string(h.query());
  h.for_each_field([&](const restinio::http_header_field_t& f) {
    r.headers.emplace(AsciiLower(f.name()), f.value());  // first value wins
  });
  r.body = req->body();
  r.peer = req->remote_endpoint().address().to_string();
  r.client = ClientAddress(r.peer, h.get_field_or("X-Forwarded-For", ""),
                           config.server().trusted_proxies);
  if (r.client.empty()) r.client = r.peer;
  // https as the client saw it: only a trusted proxy's word counts.
  const auto& trusted = config.server().trusted_proxies;
  r.https = std::find(trusted.begin(), trusted.end(), r.peer) != trusted.end() &&
            AsciiLower(h.get_field_or("X-Forwarded-Proto", "")) == "https";
  r.request_id = request_id;
  r.admin_listener = config.server().admin_listen_port == 0 || admin_listener;
  in_flight.fetch_add(1);
  // The console answers on any thread (its worker, the log's writer, a
  // NATS callback); the answer goes to the I/O thread, which alone takes
  // the parked request back (Run's end cannot race it).
  auto ticket = std::make_shared<Ticket>(this, parked.Park(req), request_id);
  console->Handle(std::move(r), [this, ticket](ApiResponse a) {
    if (ticket->answered.exchange(true)) return;  // once
    PostConsoleAnswer(ticket->no, ticket->request_id, std::move(a));
  });
}

void HttpFront::Impl::PostConsoleAnswer(uint64_t no, std::string request_id, ApiResponse a) {
  answers.Post([this, no, request_id = std::move(request_id), a = std::move(a)]() mutable {
    const restinio::request_handle_t waiting = parked.Take(no);
    if (!waiting) return;  // the front has stopped: the request is gone
    const auto code = restinio::http_status_code_t{static_cast<std::uint16_t>(a.status)};
    auto resp =
        waiting->create_response(restinio::http_status_line_t{code, ReasonPhrase(a.status)});
    resp.append_header(restinio::http_field::content_type, a.content_type)
        .append_header("X-Request-ID", request_id);
    for (const auto& [name, value] : a.headers) resp.append_header(name, value);
    if (a.content_type.rfind("application/json", 0) == 0 &&
        (a.body.empty() || a.body.back() != '\n'))
      a.body.push_back('\n');
    resp.set_body(std::move(a.body));
    resp.done();
    in_flight.fetch_sub(1);
  });
}

void HttpFront::Impl::AppendAndAnswer(const restinio::request_handle_t& req,
                                      const std::string& request_id, EventDraft draft,
                                      int unavailable_status, LogFields fields,
                                      std::function<void(JsonObject*)> extra) {
  in_flight.fetch_add(1);
  std::vector<EventDraft> drafts;
  drafts.push_back(std::move(draft));
  const auto handed = std::chrono::steady_clock::now();
  const uint64_t ticket = parked.Park(req);
  log->AppendAsync(std::move(drafts), [this, ticket, request_id, unavailable_status, handed,
                                       fields = std::move(fields), extra = std::move(extra)](
                                          const Status& s,
                                          const std::vector<AppendOutcome>& o) mutable {
    // Timed here, where the log says durable: the append's histogram
    // leaves out the wait for the I/O thread.
    const auto took_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now() - handed)
                             .count();
    answers.Post([this, ticket, request_id = std::move(request_id), unavailable_status, took_us,
                  fields = std::move(fields), extra = std::move(extra), s, o] {
      const restinio::request_handle_t waiting = parked.Take(ticket);
      if (!waiting) return;  // the front has stopped: the request is gone
      Answer(waiting, request_id, unavailable_status, took_us, fields, extra, s, o);
    });
  });
}

void HttpFront::Impl::Answer(const restinio::request_handle_t& req, const std::string& request_id,
                             int unavailable_status, int64_t append_us, const LogFields& fields,
                             const std::function<void(JsonObject*)>& extra, const Status& s,
                             const std::vector<AppendOutcome>& o) {
  metrics.ObserveAppend(append_us);
  if (!s.ok()) {
    unavailable.fetch_add(1);
    if (fields.webhook) metrics.Count(*fields.webhook, WebhookOutcome("log_unavailable"));
    logger->warn("request_id={} {} status={} error=log_unavailable detail=\"{}\"", request_id,
                 fields.Format(), unavailable_status, s.ToString());
    Respond(req, request_id, unavailable_status,
            ErrorJson("log_unavailable", "the event log cannot accept writes; retry later"), false,
            5);
  } else {
    bool dup = o[0].duplicate;
    (dup ? duplicates : accepted).fetch_add(1);
    if (fields.webhook) {
      constexpr size_t kAccepted = WebhookOutcome("accepted"), kDup = WebhookOutcome("duplicate");
      metrics.Count(*fields.webhook, dup ? kDup : kAccepted);
    }
    const auto level = fields.info ? spdlog::level::info : spdlog::level::debug;
    if (logger->should_log(level)) {
      logger->log(level, "request_id={} {} seq={} duplicate={}", request_id, fields.Format(),
                  o[0].seq, dup);
    }
    // The answer every webhook gets, written out directly: one is made
    // per event.
    std::string body;
    body.reserve(96);
    body += dup ? R"({"status":"duplicate","event_id":")" : R"({"status":"accepted","event_id":")";
    body += o[0].id.ToString();
    body += R"(","seq":)";
    body += std::to_string(o[0].seq);
    body += '}';
    if (extra) {
      JsonObject more = JsonObject::Extend(std::move(body));
      extra(&more);
      body = more.Finish();
    }
    Respond(req, request_id, 200, std::move(body));
  }
  in_flight.fetch_sub(1);
}

void HttpFront::Impl::HandleWebhook(const restinio::request_handle_t& req,
                                    const std::string& request_id) {
  const auto& h = req->header();
  HeaderMap headers;
  h.for_each_field([&](const restinio::http_header_field_t& f) {
    headers.emplace(AsciiLower(f.name()), f.value());  // first value wins
  });
  std::string method(h.method().c_str());
  HttpRequestView view;
  view.method = method;
  view.target = h.request_target();
  view.body = req->body();
  view.remote_ip = [&req] { return req->remote_endpoint().address().to_string(); };
  view.headers = &headers;

  PreparedWebhook prepared;
  auto err = Ingestor()->Prepare(view, request_id, clock->NowMicros(), &prepared);
  if (err) {
    rejected.fetch_add(1);
    metrics.CountWebhook(h.path(), err->error);
    logger->info("request_id={} path=\"{}\" status={} error={} detail=\"{}\"", request_id,
                 LogText(h.path()), err->status, err->error,
                 LogText(err->log_detail.empty() ? err->detail : err->log_detail));
    Respond(req, request_id, err->status, ErrorJson(err->error, err->detail));
    return;
  }
  if (prepared.handshake) {
    metrics.CountWebhook(h.path(), prepared.handshake->status == 200 ? "ignored" : "unauthorized");
    logger->info("request_id={} path=\"{}\" status={} event=webhook_handshake", request_id,
                 LogText(h.path()), prepared.handshake->status);
    Respond(req, request_id, prepared.handshake->status, std::move(prepared.handshake->body),
            false, 0, prepared.handshake->content_type.c_str(), &prepared.handshake->headers);
    return;
  }
  if (prepared.test_ping) {
    metrics.CountWebhook(h.path(), "ignored");
    Respond(req, request_id, 200,
            R"({"status":"ignored","detail":"vendor test ping acknowledged, not recorded"})");
    return;
  }
  const FrontMetrics::Route route = metrics.RouteOf(prepared.tenant, prepared.system);
  AppendAndAnswer(req, request_id, std::move(prepared.draft), prepared.unavailable_status,
                  LogFields{std::move(prepared.tenant), std::move(prepared.system), "", false,
                            route});
}

std::string HttpFront::Impl::HealthJson(bool* ready) const {
  Status log_health = log->Health();
  bool is_draining = draining.load();
  *ready = log_health.ok() && !is_draining;
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::steady_clock::now() - started)
                    .count();
  JsonObject http;
  http.Str("state", is_draining ? "draining" : "serving")
      .Int("in_flight", in_flight.load())
      .UInt("accepted", accepted.load() + console_counters.accepted.load())
      .UInt("duplicates", duplicates.load() + console_counters.duplicates.load())
      .UInt("rejected", rejected.load() + console_counters.rejected.load())
      .UInt("unavailable", unavailable.load() + console_counters.unavailable.load())
      .UInt("rate_limited", rate_limited.load())
      .UInt("api_rate_limited", console_counters.rate_limited.load())
      .UInt("auth_failures", console_counters.auth_failures.load());
  const uint64_t last_seq = log->LastSequence();
  JsonObject store;
  store.Str("state", log_health.ok()                      ? "writable"
                     : log_health.IsResourceExhausted() ? "low_disk"
                                                        : "unavailable")
      .UInt("last_seq", last_seq);
  if (!log_health.ok()) store.Str("detail", log_health.message());
  for (const EventLog::Counter& c : log->Counters()) store.UInt(c.name, c.value);
  JsonObject parts;
  parts.Raw("http", http.Finish()).Raw("event_log", store.Finish());
  if (health_parts) health_parts(last_seq, &parts);
  JsonObject services;
  services.Str("event_log", log_health.ok()                      ? "connected"
                            : log_health.IsResourceExhausted() ? "degraded"
                                                               : "down");
  if (health_services) health_services(&services);
  return JsonObject()
      .Str("status", *ready ? "ok" : (is_draining ? "draining" : "degraded"))
      .Str("version", kVersion)
      .Int("uptime_s", uptime)
      .Raw("services", services.Finish())
      .Raw("parts", parts.Finish())
      .Finish();
}

std::string HttpFront::Impl::MetricsBody() const {
  MetricsText out;
  out.Family("dfm_build_info", "gauge", "The running version; always 1.")
      .Sample({{"version", kVersion}}, 1);
  const double started_s =
      static_cast<double>(clock->NowMicros()) / 1e6 -
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  out.Family("process_start_time_seconds", "gauge", "When the service started (Unix time).")
      .Sample({}, std::floor(started_s));
  out.Family("dfm_http_requests_in_flight", "gauge",
             "Requests whose events are being appended or whose admin work runs.")
      .Sample({}, static_cast<double>(in_flight.load()));
  out.Family("dfm_http_draining", "gauge", "1 while the service shuts down.")
      .Sample({}, draining.load() ? 1 : 0);
  metrics.Write(&out);
  out.Family("dfm_admin_auth_failures_total", "counter",
             "API, admin and sign-in requests refused for a missing or wrong credential.")
      .Sample({}, static_cast<double>(console_counters.auth_failures.load()));
  out.Family("dfm_api_rate_limited_total", "counter",
             "API requests refused for being over their key's or tenant's limit.")
      .Sample({}, static_cast<double>(console_counters.rate_limited.load()));
  if (metrics_parts) metrics_parts(log->LastSequence(), &out);
  return out.Finish();
}

void HttpFront::Impl::BeginDrain() {
  if (draining.exchange(true)) return;
  logger->info("event=shutdown_begin in_flight={}", in_flight.load());
  {
    std::lock_guard<std::mutex> lk(console_mu);
    if (console) console->Draining();
  }
  asio::post(ioctx, [this] {
    if (server) server->close_sync();  // stop accepting
    if (admin_server) admin_server->close_sync();
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(config.server().shutdown_grace_ms);
    WaitDrained(deadline);
  });
}

void HttpFront::Impl::WaitDrained(std::chrono::steady_clock::time_point deadline) {
  if (in_flight.load() == 0 || std::chrono::steady_clock::now() >= deadline) {
    // Give responses already handed to the connections a moment to leave.
    auto timer = std::make_shared<asio::steady_timer>(ioctx, std::chrono::milliseconds(50));
    timer->async_wait([this, timer](const asio::error_code&) { ioctx.stop(); });
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(ioctx, std::chrono::milliseconds(5));
  timer->async_wait([this, timer, deadline](const asio::error_code&) { WaitDrained(deadline); });
}

Status HttpFront::Run(bool handle_signals) {
  Impl& m = *impl_;
  const ServerSettings& s = m.config.server();
  auto settings = [&](const std::string& host, uint16_t port, int max_connections,
                      bool admin) {
    return restinio::server_settings_t<Traits>{}
        .port(port)
        .address(host)
        .request_handler([&m, admin](auto req) { return m.Handle(req, admin); })
        .read_next_http_message_timelimit(std::chrono::milliseconds(s.read_timeout_ms))
        .write_http_response_timelimit(std::chrono::milliseconds(s.write_timeout_ms))
        .handle_request_timeout(std::chrono::milliseconds(s.handle_timeout_ms))
        .max_parallel_connections(static_cast<std::size_t>(max_connections))
        .ip_blocker(m.guard)
        .connection_state_listener(m.guard)
        // A connection never holds more body than the limit: past it the
        // parser drops what comes and the handler answers 413.
        .incoming_http_msg_limits(restinio::incoming_http_msg_limits_t{}
                                      .max_url_size(8192)
                                      .max_field_name_size(1024)
                                      .max_field_value_size(16384)
                                      .max_field_count(128)
                                      .max_body_size(s.max_body_bytes));
  };
  try {
    m.server = std::make_unique<Server>(
        restinio::external_io_context(m.ioctx),
        settings(s.listen_host, s.listen_port, s.max_connections, false));
    m.server->open_sync();
  } catch (const std::exception& e) {
    return Status::IOError(std::string("cannot listen on ") + s.listen_host + ":" +
                           std::to_string(s.listen_port) + ": " + e.what());
  }
  if (s.admin_listen_port != 0) {
    try {
      m.admin_server = std::make_unique<Server>(
          restinio::external_io_context(m.ioctx),
          settings(s.admin_listen_host, s.admin_listen_port, 64, true));
      m.admin_server->open_sync();
    } catch (const std::exception& e) {
      m.admin_server.reset();
      m.server->close_sync();
      m.server.reset();
      return Status::IOError(std::string("cannot listen on ") + s.admin_listen_host + ":" +
                             std::to_string(s.admin_listen_port) + " (server.admin_listen): " +
                             e.what());
    }
    m.logger->info("event=listening_admin address={}:{}", s.admin_listen_host,
                   s.admin_listen_port);
  }
  Status cs;
  {
    std::lock_guard<std::mutex> lk(m.console_mu);
    cs = m.console->Start();
    m.console_started = cs.ok();
  }
  if (!cs.ok()) {
    m.server->close_sync();
    m.server.reset();
    if (m.admin_server) m.admin_server->close_sync();
    m.admin_server.reset();
    return cs;
  }
  listening_.store(true);
  m.logger->info("event=listening address={}:{} threads={}", s.listen_host, s.listen_port,
                 s.threads);

  std::unique_ptr<asio::signal_set> signals, hangups;
  std::function<void(const asio::error_code&, int)> on_hup;  // outlives every wait on `hangups`
  if (handle_signals) {
    signals = std::make_unique<asio::signal_set>(m.ioctx, SIGTERM, SIGINT);
    signals->async_wait([&m](const asio::error_code& ec, int) {
      if (!ec) m.BeginDrain();
    });
    // SIGHUP: read the configuration again, as often as it comes.
    hangups = std::make_unique<asio::signal_set>(m.ioctx, SIGHUP);
    on_hup = [&m, &hangups, &on_hup](const asio::error_code& ec, int) {
      if (ec) return;
      if (m.on_sighup) m.on_sighup();
      hangups->async_wait(on_hup);
    };
    hangups->async_wait(on_hup);
  }
  std::vector<std::thread> pool;
  for (int i = 1; i < s.threads; ++i) pool.emplace_back([&m] { m.ioctx.run(); });
  m.ioctx.run();
  for (auto& t : pool) t.join();
  listening_.store(false);
  if (signals) signals->cancel();
  if (hangups) hangups->cancel();
  {
    // After the drain: what its workers hold runs now. A read another node
    // asks from now on finds no console (AnswerRemoteRead).
    std::unique_ptr<Console> console;
    {
      std::lock_guard<std::mutex> lk(m.console_mu);
      console = std::move(m.console);
    }
  }
  m.ioctx.shutdown();  // idle connections' handlers, while their servers exist
  m.answers.Close();   // answers the grace period did not wait for
  m.parked.Close();    // and requests still waiting for one
  m.server.reset();
  m.admin_server.reset();
  m.logger->info("event=shutdown_done accepted={} duplicates={} rejected={}", m.accepted.load(),
                 m.duplicates.load(), m.rejected.load());
  return Status::OK();
}

void HttpFront::Stop() { impl_->BeginDrain(); }

std::string HttpFront::ScrapeMetrics() const { return impl_->MetricsBody(); }
void HttpFront::SetClusterMetrics(std::function<std::string()> whole) { impl_->cluster_metrics = std::move(whole); }

void HttpFront::Reload(const Config& config) {
  auto next = std::make_shared<const WebhookIngestor>(config);
  impl_->metrics.AddRoutes(next->Routes());
  std::atomic_store(&impl_->ingestor, std::move(next));
  std::lock_guard<std::mutex> lk(impl_->console_mu);
  if (impl_->console) impl_->console->SetLiveConfig(config);  // gone once Run ended
}

void HttpFront::SetEraseHandler(EraseHandler erase) { impl_->console->SetEraseHandler(std::move(erase)); }
void HttpFront::SetBackfillHandler(BackfillHandler backfill) {
  impl_->console->SetBackfillHandler(std::move(backfill));
}
void HttpFront::SetBackupHandler(BackupHandler backup) { impl_->console->SetBackupHandler(std::move(backup)); }
void HttpFront::SetSyncControl(SyncControlHooks hooks) { impl_->console->SetSyncControl(std::move(hooks)); }
void HttpFront::SetSharedLimits(std::shared_ptr<CasStore> store) {
  impl_->console->SetSharedLimits(std::move(store));
}

void HttpFront::SetSharedKeys(std::shared_ptr<SharedKeys> shared) {
  impl_->console->SetSharedKeys(std::move(shared));
}

void HttpFront::SetSessionSecret(std::string secret) { impl_->console->SetSessionSecret(std::move(secret)); }
void HttpFront::SetAttentionSource(AttentionSource source) {
  impl_->console->SetAttentionSource(std::move(source));
}
void HttpFront::SetRemoteReads(RemoteReads ask) { impl_->console->SetRemoteReads(std::move(ask)); }
void HttpFront::AnswerRemoteRead(const EventLog& from, std::string request,
                                 std::function<void(std::string)> reply) {
  std::unique_lock<std::mutex> lk(impl_->console_mu);
  if (impl_->console && impl_->console_started) {
    impl_->console->AnswerRemoteRead(from, std::move(request), std::move(reply));
    return;
  }
  lk.unlock();
  // Before Run started the console, or once it ended: answered at once (the
  // asking node says 503, and the serving side counts the read done).
  ApiResponse a;
  a.status = 503;
  a.headers.emplace_back("Retry-After", "2");
  a.body =
      R"({"error":"owner_unreachable","detail":"the partition's node is starting or stopping"})";
  reply(EncodeReadAnswer(a));
}

void HttpFront::SetReloadHandler(ReloadHandler reload) {
  impl_->console->SetReloadHandler(reload);
  impl_->on_sighup = [reload] {
    std::string summary;
    dfm::Status done = reload(&summary);  // the handler logs what it did
    (void)done;
  };
}

void HttpFront::SetAdminToken(std::string token) { impl_->console->SetAdminToken(std::move(token)); }

void HttpFront::SetStatusSource(StatusSource source) {
  impl_->console->SetStatusSource(std::move(source));
}

void HttpFront::SetHealthServices(std::function<void(JsonObject*)> add) {
  impl_->health_services = std::move(add);
}

void HttpFront::SetMetricsParts(std::function<void(uint64_t, MetricsText*)> add) {
  impl_->metrics_parts = std::move(add);
}

void HttpFront::SetHealthParts(std::function<void(uint64_t, JsonObject*)> add) {
  impl_->health_parts = std::move(add);
}

}  // namespace dfm
