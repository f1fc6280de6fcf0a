// HttpFront: the RESTinio server in front of the ingest path.
//
//   POST /webhooks/{system}, POST /t/{tenant}/webhooks/{system}
//   GET  /healthz  (alive)   GET /readyz (log writable, enough free disk,
//        not draining)
//   GET  /v1/health (JSON: version, uptime, state of each part)
//   GET  /metrics (Prometheus text; on the admin listener when it is set)
//   /docs/visual, /v1/... (but /v1/health): the status page, the API with
//        keys and roles, the admin endpoints (console/console.h)
//
// With server.admin_listen set, a second listener (at most 64 connections)
// serves the admin paths, the console's and the health endpoints, and the
// main listener answers 404 for admin paths; otherwise the main listener
// serves all.
//
// A webhook is answered 2xx only from the append callback, i.e. after its
// event is durable; the I/O threads never wait on the log. Every response
// carries X-Request-ID. Shutdown (SIGTERM/SIGINT or Stop()): stop accepting,
// answer requests already in flight (new requests on open connections get
// 503 + Connection: close), return. The caller then closes the log, which
// answers any append still queued, before destroying the front.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "config/config.h"
#include "console/console.h"
#include "http/ingest.h"
#include "storage/event_log.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/metrics.h"
#include "util/status.h"

namespace dfm {

class HttpFront {
 public:
  // REQUIRES: `log` outlives the front and has delivered every append's
  // answer before the front is destroyed (the service closes it first);
  // `config` loaded without errors.
  HttpFront(const Config& config, EventLog* log, const Clock* clock = SystemClock::Instance());
  ~HttpFront();

  // Serves until Stop() or, if `handle_signals`, SIGTERM/SIGINT; then
  // drains. Returns an error, listening on nothing, if either port cannot
  // be bound.
  Status Run(bool handle_signals);
  // Asks Run() to drain and return; callable from any thread.
  void Stop();
  // What GET /metrics answers now (the alerter reads it). Any thread.
  std::string ScrapeMetrics() const;
  // The admin token the admin endpoints take (util/admin_token.h); API
  // keys are taken without it. Call before Run().
  void SetAdminToken(std::string token);
  // What the status page shows of the sync (console/console.h). Call
  // before Run().
  void SetStatusSource(StatusSource source);
  // The page's consent conflicts (Console::SetAttentionSource). Call
  // before Run().
  void SetAttentionSource(AttentionSource source);
  // GET /v1/health also shows what `add` writes into its "parts" (the sync
  // runtime's projections and actors), given the log's head that the
  // event log's part shows, so all parts measure against one read of it.
  // `add` runs on an I/O thread, so it must not block. Call before Run().
  void SetHealthParts(std::function<void(uint64_t last_seq, JsonObject* parts)> add);
  // GET /v1/health's "services" also lists what `add` writes: each
  // connected vendor as "connected", "degraded" or "down". Runs on an I/O
  // thread: must not block. Call before Run().
  void SetHealthServices(std::function<void(JsonObject* services)> add);
  // GET /metrics also shows the families `add` writes (the log's and the
  // sync runtime's), given the log's head. Runs on an I/O thread: must not
  // block. Call before Run().
  void SetMetricsParts(std::function<void(uint64_t last_seq, MetricsText* out)> add);
  // Cluster mode: what GET /metrics?scope=cluster answers (every node's
  // families, cluster/node_metrics.h). Runs on an I/O thread: must not
  // block. Without it, scope=cluster answers as scope=node. Call before Run().
  void SetClusterMetrics(std::function<std::string()> whole);
  // What SIGHUP (when Run handles signals) and POST /v1/admin/reload run:
  // `reload` reads the configuration again and, when it is sound, calls
  // Reload with it. Call before Run().
  void SetReloadHandler(ReloadHandler reload);
  // What POST /v1/admin/erase runs (docs/privacy.md). Call before Run().
  void SetEraseHandler(EraseHandler erase);
  // What /v1/admin/backfill runs (app/backfill_jobs.h). Call before Run().
  void SetBackfillHandler(BackfillHandler backfill);
  void SetBackupHandler(BackupHandler backup);
  // The admin API's sync pause and resume (console/console.h).
  void SetSyncControl(SyncControlHooks hooks);
  // Cluster mode: the API keys every node shares (Console::SetSharedKeys).
  void SetSharedKeys(std::shared_ptr<SharedKeys> shared);
  // Cluster mode: the API's limits every node counts in (Console::SetSharedLimits).
  void SetSharedLimits(std::shared_ptr<CasStore> store);
  // Cluster mode: the page's session secret (Console::SetSessionSecret).
  // Call before Run().
  void SetSessionSecret(std::string secret);
  // Cluster mode: reads from any node (Console::SetRemoteReads).
  void SetRemoteReads(RemoteReads ask);
  void AnswerRemoteRead(const EventLog& from, std::string request, std::function<void(std::string)> reply);
  // Console::DropParkedAnswers (an erasure of `tenant`'s run on this node).
  void DropParkedAnswers(const std::string& tenant);
  // Puts `config`'s tenants and systems in place for the requests that
  // come next (their webhook sources, metrics routes, the API's tenants);
  // requests under way finish with what they had. The server settings
  // stay those the front was made with. REQUIRES: `config` loaded without
  // errors, outliving the front.
  void Reload(const Config& config);
  // True once Run() accepts connections.
  bool listening() const { return listening_.load(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> listening_{false};
};

}  // namespace dfm
