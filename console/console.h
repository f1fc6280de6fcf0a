// Console: the service's face besides webhooks (docs/http-api.md, "Keys
// and roles"; docs/status-page.md). It answers
//
//   GET  /docs/visual[?q=...]            the status page and its search
//   POST /docs/visual/sign-in | sign-out  a viewer key -> a session cookie
//   GET  /v1/openapi.json                 the API's OpenAPI 3.1 document
//   GET  /v1/contacts/trace, /v1/contacts/as-of, /v1/events,
//        /v1/audit/opt-outs, /v1/audit/violations,
//        /v1/audit/consent-conflicts, /v1/dead-letters      (viewer)
//   POST /v1/admin/replay, /v1/admin/settle                 (operator)
//   GET|POST /v1/admin/keys, DELETE /v1/admin/keys/{id}     (admin)
//
// Who: `Authorization: Bearer <API key>` (console/api_keys.h), the page's
// session cookie, or the admin token of the data directory (role admin,
// every tenant; taken only where the admin endpoints are served). The
// /v1/admin/ paths are served where the admin endpoints are
// (server.admin_listen when set); the rest on both listeners. Every
// authenticated request counts against its key's and its tenant's limits
// (api.rate_limit_per_key, api.rate_limit_per_tenant: per minute).
//
// Thread-safety: Handle may be called from any thread; it answers through
// `respond` exactly once, from that thread or one of the console's workers
// (one does everything that reads more than a few keys of the log; another
// the erasures).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "console/status_view.h"
#include "storage/event_log.h"
#include "sync/sync_control.h"
#include "util/clock.h"

namespace dfm {

class CasStore;    // storage/cas_store.h
class SharedKeys;  // console/shared_keys.h

struct ApiRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query
  std::string query;   // after '?', undecoded
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string peer;    // the connection's address
  std::string client;  // the client's (X-Forwarded-For from a trusted proxy), else the peer's
  std::string request_id;
  bool admin_listener = false;  // came where the admin endpoints are served
  bool https = false;           // the client reached a trusted proxy over https
  std::string Header(std::string_view lower_name) const;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

using Responder = std::function<void(ApiResponse)>;

// Counts the front shows in /v1/health's parts.http and /metrics, shared
// with the server.
struct ConsoleCounters {
  std::atomic<uint64_t> accepted{0}, duplicates{0}, rejected{0}, unavailable{0};
  std::atomic<uint64_t> auth_failures{0}, rate_limited{0};
  // Access records (who read what, storage/access_log.h) that could not be
  // written: each is a gap in that evidence.
  std::atomic<uint64_t> access_log_failures{0};
  // Tenants whose API keys the last reload could not read: their keys are
  // refused (fail closed) until a reload reads them.
  std::atomic<uint64_t> keys_unread_tenants{0};
  // Cluster mode (console/shared_keys.h): 1 while this node's last read of
  // the keys every node shares failed (keys made or revoked on another
  // node do not reach it meanwhile); and key changes made here not yet
  // shared (a revocation among them still lets the key in elsewhere).
  std::atomic<uint64_t> shared_keys_stale{0}, keys_unshared{0};
};

// What the status page shows of the sync to a reader of `tenant`'s, or of
// every tenant's (kAllTenants): a cluster's engine is then that of the
// partitions holding the tenant. Read on the caller's thread (it must not
// block).
using StatusSource = std::function<void(const std::string& tenant, std::vector<ConnectorSnapshot>*,
                                        EngineSnapshot*)>;

// The consent conflicts the status page lists (the newest 20, and how
// many) of `tenant`, or of every tenant (kAllTenants), read on the
// caller's thread (it must not block). Without one the page reads the
// console's log.
using AttentionSource =
    std::function<void(const std::string& tenant, std::vector<AttentionItem>*, uint64_t* total)>;

// Reloads the configuration (`dfm serve`'s SIGHUP): OK with what changed,
// or why the new configuration was refused whole (the old one stays).
// `record` (null for SIGHUP) is called with what would change once the new
// configuration is found sound, before it is put in place: one that fails
// leaves the old one in place, and its status is returned.
using ReloadRecorder = std::function<Status(const std::string& summary)>;
using ReloadHandler = std::function<Status(std::string* summary, const ReloadRecorder& record)>;

// Erases a person (app/erase.h, docs/privacy.md) for POST /v1/admin/erase.
struct EraseAnswer {
  uint64_t seq = 0;      // the contact.erased event
  bool already = false;  // erased before
  uint64_t keys = 0, events = 0, sources = 0, subjects = 0;
};
// NotFound: no such contact in the tenant; FailedPrecondition: the
// person's consent pushes are on their way and `force` is false
// (EraseRequest, app/erase.h); else OK or why not.
using EraseHandler = std::function<Status(
    const std::string& tenant, const std::string& contact_id, const std::string& reason,
    const std::string& requested_by, bool force, EraseAnswer* answer)>;

// Backfills run by the service (app/backfill_jobs.h) for /v1/admin/backfill:
// POST starts one (`start`), GET lists the tenant's.
struct BackfillAsk {
  bool start = false;
  std::string system;
  int page_size = 100;
  bool restart = false;
};
// *json: the run started (a JSON object; with AlreadyExists, the run under
// way), or the tenant's runs (a JSON array). InvalidArgument: the system
// cannot be backfilled there; Unavailable: not now.
using BackfillHandler =
    std::function<Status(const std::string& tenant, const BackfillAsk& ask, std::string* json)>;

// Backs the data directory up into `into` for POST /v1/admin/backup
// (storage/backup.h); *manifest: the new backup's manifest (JSON).
using BackupHandler = std::function<Status(const std::string& into, int keep, std::string* manifest)>;

// Cluster mode: asks the node running `tenant`'s partition to answer
// `request` (console/remote_read.h); `done` gets its answer or why there
// is none (cluster/reads.h).
using RemoteReads = std::function<void(const std::string& tenant, std::string request,
                                       std::function<void(Status, std::string answer)> done)>;

// POST /v1/admin/sync/{pause,resume} and GET /v1/admin/sync
// (sync/sync_control.h): the state they change, and what makes the
// connectors look at it again.
struct SyncControlHooks {
  std::shared_ptr<SyncControl> control;
  std::function<void()> wake;
  // Cluster mode: makes a pause or resume the log took known to every
  // node (app/shared_control.h), `control` included (it is not applied
  // to `control` again); *count: its number in the shared sequence.
  // Empty on a single node.
  std::function<Status(const Event&, uint64_t* count)> share;
  // Cluster mode, after `share`: the nodes that must hold it (every live
  // node, those running partitions, this one) and, of them, those not
  // having applied the sequence up to `count` yet. The answer waits for
  // them up to `held_wait_ms`, and names them. Empty: answered at once.
  std::function<Status(uint64_t count, std::vector<std::string>* nodes,
                       std::vector<std::string>* waiting)>
      waiting;
  int64_t held_wait_ms = 5000;
};

class Console {
 public:
  // REQUIRES: every argument outlives the console.
  Console(const Config& config, EventLog* log, const Clock* clock, ConsoleCounters* counters);
  ~Console();
  // The front has begun to stop: writes waiting to be seen are answered
  // "applying" at once, while their answers can still go out. Any thread.
  void Draining();

  // Reads the keys from the log and the session secret from the data
  // directory (made when missing). Call before Handle.
  Status Start();
  void SetAdminToken(std::string token);
  void SetStatusSource(StatusSource source);
  void SetAttentionSource(AttentionSource source);
  // POST /v1/admin/reload (an admin key of every tenant) runs `reload`.
  void SetReloadHandler(ReloadHandler reload);
  // SIGHUP's reload: the ReloadHandler with no recorder, on the console's
  // worker, never on the caller's thread (an I/O thread, which a reload
  // waiting behind another's durable record would hold).
  void ReloadInBackground();
  void SetEraseHandler(EraseHandler erase);
  // /v1/admin/backfill (operator keys) runs `backfill`.
  void SetBackfillHandler(BackfillHandler backfill);
  // POST /v1/admin/backup (an admin key of every tenant) runs `backup`.
  void SetBackupHandler(BackupHandler backup);
  // The admin API's sync pause and resume (operator keys).
  void SetSyncControl(SyncControlHooks hooks);
  // The configuration a reload put in place (tenants, systems, the sync's
  // rules); `config` must outlive the console.
  void SetLiveConfig(const Config& config);
  // Cluster mode: keys are shared with every node (console/shared_keys.h):
  // those made or revoked here are written there, and the shared ones
  // folded now and every second; the changes this node could not share
  // before a restart (<data dir>/keys-unshared) applied and shared. Once,
  // before requests are served.
  void SetSharedKeys(std::shared_ptr<SharedKeys> shared);
  // Cluster mode: the API's limits count in `store` (the bucket DFM_LIMITS),
  // which every node shares (console/limits.h). Before requests come.
  void SetSharedLimits(std::shared_ptr<CasStore> store);
  // Cluster mode: the secret every node signs the page's sessions with, so
  // that a sign-in holds on whichever node the proxy picks (in place of
  // the data directory's). Before Start.
  void SetSessionSecret(std::string secret);
  // Cluster mode: the reads (trace, as-of, events, audits, dead letters)
  // are asked of the node running the tenant's partition through `ask`,
  // and answered for other nodes by AnswerRemoteRead from a partition's
  // log this node runs. Call before Handle. `from` must stay open until
  // `reply` has run.
  void SetRemoteReads(RemoteReads ask);
  void AnswerRemoteRead(const EventLog& from, std::string request, std::function<void(std::string)> reply);
  // Lets go of `tenant`'s answers parked for their parts (a person of it
  // erased on this node: console/read_parts.h).
  void DropParkedAnswers(const std::string& tenant);

  // Whether the console answers `path` (the server answers the rest).
  static bool Serves(std::string_view path);
  void Handle(ApiRequest request, Responder respond);

  struct Impl;  // console/console_internal.h

 private:
  // Shared with the log's and the cluster's callbacks that may come after
  // the console ends (they then answer nothing).
  std::shared_ptr<Impl> impl_;
};

// The routes, as the OpenAPI document lists them: "<METHOD> <path>" with
// path parameters in braces ("DELETE /v1/admin/keys/{id}").
const std::vector<std::string>& ConsoleRoutes();
// The OpenAPI 3.1 document (GET /v1/openapi.json), console/openapi.cc.
const std::string& OpenApiDocument();

}  // namespace dfm
