#include "http/front_impl.h"

namespace dfm {

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

restinio::server_settings_t<HttpTraits> HttpFront::Impl::ListenerSettings(const std::string& host,
                                                                          uint16_t port,
                                                                          int max_connections,
                                                                          bool admin) {
  const ServerSettings& s = config.server();
  return restinio::server_settings_t<HttpTraits>{}
      .port(port)
      .address(host)
      .request_handler([this, admin](auto req) { return Handle(req, admin); })
      .read_next_http_message_timelimit(std::chrono::milliseconds(s.read_timeout_ms))
      .write_http_response_timelimit(std::chrono::milliseconds(s.write_timeout_ms))
      .handle_request_timeout(std::chrono::milliseconds(s.handle_timeout_ms))
      .max_parallel_connections(static_cast<std::size_t>(max_connections))
      .ip_blocker(guard)
      .connection_state_listener(guard)
      // A connection never holds more body than the limit: past it the
      // parser drops what comes and the handler answers 413.
      .incoming_http_msg_limits(restinio::incoming_http_msg_limits_t{}
                                    .max_url_size(8192)
                                    .max_field_name_size(1024)
                                    .max_field_value_size(16384)
                                    .max_field_count(128)
                                    .max_body_size(s.max_body_bytes));
}

Status HttpFront::Impl::OpenListeners() {
  const ServerSettings& s = config.server();
  try {
    server = std::make_unique<HttpServer>(
        restinio::external_io_context(ioctx),
        ListenerSettings(s.listen_host, s.listen_port, s.max_connections, false));
    server->open_sync();
  } catch (const std::exception& e) {
    server.reset();
    return Status::IOError(std::string("cannot listen on ") + s.listen_host + ":" +
                           std::to_string(s.listen_port) + ": " + e.what());
  }
  if (s.admin_listen_port == 0) return Status::OK();
  try {
    admin_server = std::make_unique<HttpServer>(
        restinio::external_io_context(ioctx),
        ListenerSettings(s.admin_listen_host, s.admin_listen_port, 64, true));
    admin_server->open_sync();
  } catch (const std::exception& e) {
    CloseListeners();
    return Status::IOError(std::string("cannot listen on ") + s.admin_listen_host + ":" +
                           std::to_string(s.admin_listen_port) +
                           " (server.admin_listen): " + e.what());
  }
  logger->info("event=listening_admin address={}:{}", s.admin_listen_host, s.admin_listen_port);
  return Status::OK();
}

void HttpFront::Impl::CloseListeners() {
  if (server) server->close_sync();
  server.reset();
  if (admin_server) admin_server->close_sync();
  admin_server.reset();
}

Status HttpFront::Impl::StartConsole() {
  std::lock_guard<std::mutex> lk(console_mu);
  Status cs = console->Start();
  console_started = cs.ok();
  return cs;
}

void HttpFront::Impl::Serve(bool handle_signals, std::atomic<bool>* listening) {
  if (handle_signals) {
    signals = std::make_unique<asio::signal_set>(ioctx, SIGTERM, SIGINT);
    signals->async_wait([this](const asio::error_code& ec, int) {
      if (!ec) BeginDrain();
    });
    // SIGHUP: read the configuration again, as often as it comes.
    hangups = std::make_unique<asio::signal_set>(ioctx, SIGHUP);
    on_hup = [this](const asio::error_code& ec, int) {
      if (ec) return;
      if (on_sighup) on_sighup();
      hangups->async_wait(on_hup);
    };
    hangups->async_wait(on_hup);
  }
  std::vector<std::thread> pool;
  for (int i = 1; i < config.server().threads; ++i) pool.emplace_back([this] { ioctx.run(); });
  ioctx.run();
  for (auto& t : pool) t.join();
  listening->store(false);
  if (signals) signals->cancel();
  if (hangups) hangups->cancel();
}

void HttpFront::Impl::Release() {
  {
    // After the drain: what its workers hold runs now. A read another node
    // asks from now on finds no console (AnswerRemoteRead).
    std::unique_ptr<Console> gone;
    {
      std::lock_guard<std::mutex> lk(console_mu);
      gone = std::move(console);
    }
  }
  ioctx.shutdown();  // idle connections' handlers, while their servers exist
  answers.Close();   // answers the grace period did not wait for
  parked.Close();    // and requests still waiting for one
  server.reset();
  admin_server.reset();
  logger->info("event=shutdown_done accepted={} duplicates={} rejected={}", accepted.load(),
               duplicates.load(), rejected.load());
}

Status HttpFront::Run(bool handle_signals) {
  Impl& m = *impl_;
  Status s = m.OpenListeners();
  if (!s.ok()) return s;
  s = m.StartConsole();
  if (!s.ok()) {
    m.CloseListeners();
    return s;
  }
  listening_.store(true);
  const ServerSettings& settings = m.config.server();
  m.logger->info("event=listening address={}:{} threads={}", settings.listen_host,
                 settings.listen_port, settings.threads);
  m.Serve(handle_signals, &listening_);
  m.Release();
  // Only now: while a signal set lives its signals are caught, so one that
  // comes during the release does not cut it short.
  m.signals.reset();
  m.hangups.reset();
  return Status::OK();
}

void HttpFront::Stop() { impl_->BeginDrain(); }

std::string HttpFront::ScrapeMetrics() const { return impl_->MetricsBody(); }
void HttpFront::SetClusterMetrics(std::function<std::string()> whole) {
  impl_->cluster_metrics = std::move(whole);
}

void HttpFront::Reload(const Config& config) {
  auto next = std::make_shared<const WebhookIngestor>(config);
  impl_->metrics.AddRoutes(next->Routes());
  std::atomic_store(&impl_->ingestor, std::move(next));
  std::lock_guard<std::mutex> lk(impl_->console_mu);
  if (impl_->console) impl_->console->SetLiveConfig(config);  // gone once Run ended
}

void HttpFront::SetEraseHandler(EraseHandler erase) {
  impl_->console->SetEraseHandler(std::move(erase));
}
void HttpFront::SetBackfillHandler(BackfillHandler backfill) {
  impl_->console->SetBackfillHandler(std::move(backfill));
}
void HttpFront::SetBackupHandler(BackupHandler backup) {
  impl_->console->SetBackupHandler(std::move(backup));
}
void HttpFront::SetSyncControl(SyncControlHooks hooks) {
  impl_->console->SetSyncControl(std::move(hooks));
}
void HttpFront::SetSharedLimits(std::shared_ptr<CasStore> store) {
  impl_->console->SetSharedLimits(std::move(store));
}

void HttpFront::SetSharedKeys(std::shared_ptr<SharedKeys> shared) {
  impl_->console->SetSharedKeys(std::move(shared));
}

void HttpFront::SetSessionSecret(std::string secret) {
  impl_->console->SetSessionSecret(std::move(secret));
}
void HttpFront::SetAttentionSource(AttentionSource source) {
  impl_->console->SetAttentionSource(std::move(source));
}
void HttpFront::SetRemoteReads(RemoteReads ask) { impl_->console->SetRemoteReads(std::move(ask)); }
void HttpFront::DropParkedAnswers(const std::string& tenant) {
  std::lock_guard<std::mutex> lk(impl_->console_mu);
  if (impl_->console) impl_->console->DropParkedAnswers(tenant);
}
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
  impl_->on_sighup = [impl = impl_.get()] {
    std::lock_guard<std::mutex> lk(impl->console_mu);
    if (impl->console) impl->console->ReloadInBackground();  // gone once Run ended
  };
}

void HttpFront::SetAdminToken(std::string token) {
  impl_->console->SetAdminToken(std::move(token));
}

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
