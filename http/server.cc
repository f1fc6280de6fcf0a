#include "http/front_impl.h"

namespace dfm {

namespace {

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
    // A webhook is not taken now: a status its sender retries on.
    if (!admin_path) metrics.CountWebhook(path, "shutting_down");
    Respond(req, request_id, admin_path ? 503 : Ingestor()->RetryStatusFor(path),
            ErrorJson("shutting_down", "the service is shutting down; retry"), true, 5);
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
                                      std::function<void(JsonObject*)> extra,
                                      std::shared_ptr<const HandshakeAnswer> recorded) {
  in_flight.fetch_add(1);
  std::vector<EventDraft> drafts;
  drafts.push_back(std::move(draft));
  const auto handed = std::chrono::steady_clock::now();
  const uint64_t ticket = parked.Park(req);
  log->AppendAsync(std::move(drafts), [this, ticket, request_id, unavailable_status, handed,
                                       fields = std::move(fields), extra = std::move(extra),
                                       recorded = std::move(recorded)](
                                          const Status& s,
                                          const std::vector<AppendOutcome>& o) mutable {
    // Timed here, where the log says durable: the append's histogram
    // leaves out the wait for the I/O thread.
    const auto took_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now() - handed)
                             .count();
    answers.Post([this, ticket, request_id = std::move(request_id), unavailable_status, took_us,
                  fields = std::move(fields), extra = std::move(extra),
                  recorded = std::move(recorded), s, o] {
      const restinio::request_handle_t waiting = parked.Take(ticket);
      if (!waiting) return;  // the front has stopped: the request is gone
      Answer(waiting, request_id, unavailable_status, took_us, fields, extra, recorded.get(), s, o);
    });
  });
}

void HttpFront::Impl::Answer(const restinio::request_handle_t& req, const std::string& request_id,
                             int unavailable_status, int64_t append_us, const LogFields& fields,
                             const std::function<void(JsonObject*)>& extra,
                             const HandshakeAnswer* recorded, const Status& s,
                             const std::vector<AppendOutcome>& o) {
  metrics.ObserveAppend(append_us);
  if (s.code() == Status::Code::kTooLarge) {  // the log can never take it (cluster mode's limit)
    rejected.fetch_add(1);
    if (fields.webhook) metrics.Count(*fields.webhook, WebhookOutcome("body_too_large"));
    logger->warn("request_id={} {} status=413 error=body_too_large detail=\"{}\"", request_id,
                 fields.Format(), s.message());
    Respond(req, request_id, 413, ErrorJson("body_too_large", s.message()));
  } else if (!s.ok()) {
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
    if (recorded) {  // the vendor's own (Twilio's TwiML); what the JSON says, in headers
      const std::vector<std::pair<std::string, std::string>> said = {
          {"X-DFM-Status", dup ? "duplicate" : "accepted"},
          {"X-DFM-Event-Id", o[0].id.ToString()},
          {"X-DFM-Seq", std::to_string(o[0].seq)}};
      Respond(req, request_id, 200, recorded->body, false, 0, recorded->content_type.c_str(),
              &said);
      in_flight.fetch_sub(1);
      return;
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
            R"({"status":"ignored","detail":"acknowledged, not recorded: nothing in it is read"})");
    return;
  }
  const FrontMetrics::Route route = metrics.RouteOf(prepared.tenant, prepared.system);
  AppendAndAnswer(
      req, request_id, std::move(prepared.draft), prepared.unavailable_status,
      LogFields{std::move(prepared.tenant), std::move(prepared.system), "", false, route}, {},
      std::move(prepared.recorded_answer));
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
  // The console's: one sample each, no labels.
  const struct {
    const char *name, *type, *help;
    const std::atomic<uint64_t>& value;
  } console_families[] = {
      {"dfm_admin_auth_failures_total", "counter",
       "API, admin and sign-in requests refused for a missing or wrong credential.",
       console_counters.auth_failures},
      {"dfm_api_rate_limited_total", "counter",
       "API requests refused for being over their key's or tenant's limit.",
       console_counters.rate_limited},
      {"dfm_api_keys_unread_tenants", "gauge",
       "Tenants whose API keys the last reload could not read (refused until one does).",
       console_counters.keys_unread_tenants},
      {"dfm_access_log_failures_total", "counter",
       "Access records (who read what) that could not be written.",
       console_counters.access_log_failures},
      {"dfm_api_keys_stale", "gauge",
       "Cluster mode: 1 while the last read of the keys every node shares failed.",
       console_counters.shared_keys_stale},
      {"dfm_api_keys_unshared", "gauge",
       "Cluster mode: key changes made on this node not yet shared with the others.",
       console_counters.keys_unshared},
  };
  for (const auto& f : console_families)
    out.Family(f.name, f.type, f.help).Sample({}, static_cast<double>(f.value.load()));
  if (metrics_parts) metrics_parts(log->LastSequence(), &out);
  return out.Finish();
}

}  // namespace dfm
