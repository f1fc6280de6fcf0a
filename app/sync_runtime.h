// Everything `dfm serve` runs besides the HTTP front: the projections
// (caught up before anything else starts, then folding in the background)
// and, when [sync] is enabled, the actor system with the router, contact
// and connector actors and the outbound HTTP client.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "console/status_view.h"
#include "storage/cas_store.h"
#include "storage/event_log.h"
#include "sync/decided_view.h"
#include "sync/sync_control.h"
#include "util/json.h"
#include "util/metrics.h"
#include "util/status.h"

namespace dfm {

class BackfillJobs;

class SyncRuntime {
 public:
  ~SyncRuntime();
  // Catches the projections up (progress in the log), then starts them and
  // the sync actors. REQUIRES: `log` outlives the runtime. With `runs`
  // (cluster mode: one runtime per partition), only the tenants it accepts
  // get connectors and rules; the others' events are never routed.
  // `subject_hash_key`: the key store's (KeyStore::HashKey) when the log
  // seals, so texts are checked against erased people's opt-outs.
  // `vendor_records`: where connectors keep the records they create
  // (connectors/common/vendor_records.h), shared by every node of a
  // cluster; null: the log's own state (one node). `replicate_state`:
  // the cluster's (SyncEnv::replicate_state); null on one node.
  // `shared_control`: the operator's pauses and limits every node shares
  // (cluster mode, app/shared_control.h), folded after the log's own and
  // before any connector starts, so that nothing re-driven at start goes
  // out under a pause. `cancel` (may be null; outlives the runtime): a
  // partition stopping while it starts sets it; the projections' catch-up
  // here then ends early (ProjectionRunner::Options::cancel) and Start
  // returns Unavailable, having started nothing that decides.
  static Status Start(const Config& config, EventLog* log, std::unique_ptr<SyncRuntime>* out,
                      std::function<bool(const std::string& tenant)> runs = nullptr,
                      std::string subject_hash_key = "",
                      std::shared_ptr<CasStore> vendor_records = nullptr,
                      StateReplicator replicate_state = nullptr,
                      const std::vector<Event>& shared_control = {},
                      const std::atomic<bool>* cancel = nullptr);
  // A configuration reload: every tenant's rules and tables from `config`,
  // a connector actor for each newly enabled (tenant, system), and new
  // settings (credentials, limits) for those whose settings changed; the
  // pushes they hold carry on. REQUIRES: `config` loaded without errors,
  // outliving the runtime. Callable from any thread.
  void Reload(const Config& config);
  // Stops the actors first (no new pushes), then the projections.
  void Stop();
  // Adds "projections" and "sync" to GET /v1/health's parts
  // (docs/http-api.md), measured against the log's head `last_seq`.
  // Callable from any thread while the runtime exists.
  void AddHealthParts(uint64_t last_seq, JsonObject* parts) const;
  // Events after the last one every part has taken in (the projections'
  // fold and, when on, the router's decisions), against the log's head.
  uint64_t Behind(uint64_t last_seq) const;
  // Each connected vendor's state for GET /v1/health's "services".
  void AddServices(JsonObject* services) const;
  // What the router has decided, asked of it from any thread for as long
  // as the function is kept (it keeps the router's board); null when the
  // sync's actors do not run.
  std::function<DecidedView()> DecidedSource() const;
  // The same parts' families for GET /metrics (docs/metrics.md).
  void WriteMetrics(uint64_t last_seq, MetricsText* out) const;
  // What the status page shows of each connected system and of the sync
  // (console/status_view.h), against the log's head `last_seq`.
  void StatusSnapshot(uint64_t last_seq, std::vector<ConnectorSnapshot>* connectors,
                      EngineSnapshot* engine) const;

  // An operator's pauses and concurrency limits (actors/sync_control.h),
  // folded from the log at Start; null when [sync] is off.
  std::shared_ptr<SyncControl> control() const;
  // Every connector looks again at what it may send: after `control()`
  // changed. Callable from any thread.
  void WakeConnectors() const;
  // The backfills it runs (app/backfill_jobs.h), those a stop left
  // unfinished started again at Start; null when [sync] is off.
  BackfillJobs* backfills() const;
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfm
