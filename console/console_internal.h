// Console's insides, shared by its files: console.cc (routing, who is
// asking, limits), page.cc (the status page), endpoints.cc (the read and
// admin endpoints). Not for use outside console/.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "campaigns/campaign_view.h"
#include "campaigns/check.h"
#include "connectors/common/mapper.h"
#include "console/api_keys.h"
#include "console/console.h"
#include "console/limits.h"
#include "console/read_parts.h"
#include "console/remote_read.h"
#include "console/shared_keys.h"
#include "storage/access_log.h"
#include "sync/normalize.h"
#include "util/json.h"
#include "util/worker.h"

namespace dfm {

// Who is asking, once authenticated.
struct Principal {
  std::string credential;  // "admin-token", "key:<id>"
  std::string key_id;      // empty for the admin token
  std::string name;
  ApiRole role = ApiRole::kViewer;
  std::string tenant = std::string(kAllTenants);  // what it may see
};

// The most a read answered for another node carries in one message
// (NATS's max_payload is 1 MiB by default); a larger one goes in parts
// (console/read_parts.h), parked on the answering node at most
// kMaxParkedAnswers together and kMaxTenantParkedAnswers of one tenant's
// (the most one answer may be), each until kParkedAnswerTtlUs after its
// last part was asked.
inline constexpr size_t kMaxReadAnswer = 960 * 1024;
inline constexpr size_t kMaxParkedAnswers = 256u << 20;
inline constexpr size_t kMaxTenantParkedAnswers = kMaxParkedAnswers / 2;
inline constexpr int64_t kParkedAnswerTtlUs = 60'000'000;

// The request's parameters (query string, or a form body).
using Params = std::vector<std::pair<std::string, std::string>>;
std::string Param(const Params& p, std::string_view name);  // "" when absent

ApiResponse JsonError(int status, const std::string& error, const std::string& detail);
// The answer to a write the log refused (`s` not OK): 413 body_too_large
// when it never could take it (Status::TooLarge: a cluster's limit on one
// event), else 503 log_unavailable with `detail` and Retry-After.
ApiResponse AppendRefused(const Status& s, const std::string& detail);
// {"items":[...]} of the JSON lines a replay tool printed.
std::string JsonLinesDocument(const std::string& lines);

// A parted answer being put together (Console::Impl::ReadParts).
struct PartedRead {
  RemoteRead next;  // kReadPartRoute; its offset param set per part
  std::string token;
  uint64_t total = 0;
  ApiResponse whole;
  std::function<void(ApiResponse)> done;
};

struct Console::Impl : std::enable_shared_from_this<Console::Impl> {
  Impl(const Config& c, EventLog* l, const Clock* k, ConsoleCounters* n)
      : config(c),
        log(l),
        clock(k),
        counters(n),
        normalizer(c.sync().default_region),
        mapper([this](const std::string& t, const std::string& s) {
          return MapperSettingsFor(Live(), &normalizer, t, s);
        }),
        live(&c) {}

  const Config& config;  // as started: server, API and data settings
  // The configuration's tenants, systems and sync rules as last (re)loaded.
  const Config& Live() const { return *live.load(std::memory_order_acquire); }
  EventLog* log;
  const Clock* clock;
  ConsoleCounters* counters;
  Normalizer normalizer;
  MapperSource mapper;
  ApiKeyRegistry keys;
  // The tenants whose api_keys streams `keys` has read: those of the start
  // and each one a reload added since (SetLiveConfig reads a new one's
  // before the tenant is live).
  std::set<std::string> keys_loaded;
  std::mutex keys_load_mu;
  std::string admin_token;     // empty: not taken
  std::string session_secret;  // signs the page's session cookies
  StatusSource status;
  AttentionSource attention_source;  // empty: the conflicts in `log`
  WindowLimiter per_key, per_tenant;
  std::unique_ptr<Worker> worker;
  // Erasures, on a thread of their own: one may wait for the sync (up to
  // 20 s, app/erase.h) while the worker goes on reading.
  std::unique_ptr<Worker> eraser;
  std::atomic<const Config*> live;
  ReloadHandler reload;  // POST /v1/admin/reload; empty: not offered
  EraseHandler erase;    // POST /v1/admin/erase; empty: not offered
  BackfillHandler backfill;  // /v1/admin/backfill; empty: not offered
  BackupHandler backup;  // POST /v1/admin/backup; empty: not offered
  SyncControlHooks sync_control;  // /v1/admin/sync; null control: not offered
  // Cluster mode: the keys every node shares (console/shared_keys.h),
  // folded again every second by `key_poller`; null on a single node.
  std::shared_ptr<SharedKeys> shared_keys;
  std::thread key_poller;
  std::mutex poll_mu;
  std::condition_variable poll_cv;
  bool polling_stopped = false;   // GUARDED_BY(poll_mu)
  std::vector<Event> unshared;    // GUARDED_BY(poll_mu): to publish again
  // Counts `unshared` and keeps it in the data directory (a restart
  // shares it then). REQUIRES: poll_mu held.
  void KeepUnshared();
  // Makes a key event the log took known to every node (when shared); a
  // failed write is tried again by the poller.
  void ShareKeyEvent(const Event& e);
  void PollSharedKeys();
  std::unique_ptr<AccessLog> access;  // made by Start
  // Appends to `access`; a failure is logged and counted, the call answered.
  void RecordAccess(const AccessRecord& r);
  // The record of `r` to route `route`, before who asked is known.
  AccessRecord AccessOf(const ApiRequest& r, const std::string& route) const;

  // Routing and who is asking (console.cc).
  std::optional<Principal> Authenticate(const ApiRequest& r) const;
  // Who asks, filled into *record: answers 401 (no valid key) or 403 (a
  // role below `needs`) and returns nullopt, else the principal.
  std::optional<Principal> Admit(const ApiRequest& r, ApiRole needs, AccessRecord* record,
                                 const Responder& answer);
  // The keyed or admin call at route `rpath` (its path parameter `param`)
  // by `who`, counted against its limits (429), on the tenant it asks
  // about (*record's tenant).
  void Dispatch(const ApiRequest& r, const Principal& who, const std::string& rpath,
                const std::string& param, AccessRecord* record, Responder answer);
  // The tenant a request asks about (?tenant=, else the key's own, else
  // "default"); answers and returns nullopt when unknown or not the key's.
  std::optional<std::string> TenantOf(const ApiRequest& r, const Params& p, const Principal& who,
                                      const Responder& respond) const;
  // Counts the request against the key's and the tenant's limits; answers
  // 429 and returns false when over. Sets the X-RateLimit-* headers of
  // `headers` either way.
  bool WithinLimits(const Principal& who, const std::string& tenant,
                    std::vector<std::pair<std::string, std::string>>* headers,
                    const Responder& respond);

  // The status page (page.cc).
  void Page(const ApiRequest& r, Responder respond);
  void SignIn(const ApiRequest& r, Responder respond);
  void SignOut(const ApiRequest& r, Responder respond);
  std::optional<ApiKeyRecord> SessionKey(const ApiRequest& r) const;
  // The status page's view for `tenant`'s keys, or of every tenant
  // (kAllTenants: an anonymous reader's or a key of every tenant), under
  // `now`'s tenants. `anonymous`: for a reader not signed in, what a
  // system's client says of its records (HaloPSA's Clients by name) left
  // out and every consent conflict's contact hidden where several tenants
  // share the service, or where its tenant is not one of `now`'s (a
  // partition's node configured otherwise).
  StatusView View(const std::string& tenant, const Config& now, bool anonymous) const;

  // The endpoints (endpoints.cc); `headers` carries the limits' headers.
  using Headers = std::vector<std::pair<std::string, std::string>>;
  // The reads (reads.cc): answered from `log`, or in cluster mode by the
  // node running the tenant's partition (`remote_reads`).
  // `whole`: the caller is a key of every tenant (or the admin token), who
  // also sees the installation's own records (console/installation_events.h).
  void Read(const std::string& route, const Params& p, const std::string& tenant, bool whole,
            Headers headers, Responder respond);
  // Read `route` of `tenant` over `from` (without the limits' headers).
  ApiResponse ReadFrom(const EventLog& from, const std::string& route, const Params& p,
                       const std::string& tenant, bool whole) const;
  void AnswerRemoteRead(const EventLog& from, std::string request, std::function<void(std::string)> reply);
  // Asks the next part of a parted answer (console/read_parts.h) until it
  // is whole, then calls `done` with it, or with the 503 a lost part gives.
  void ReadParts(const RemoteRead& asked, ReadPart first, std::function<void(ApiResponse)> done);
  void AskNextPart(std::shared_ptr<PartedRead> r);
  // The answer to a kReadPartRoute request: status 200 with the encoded
  // part as its body, else the refusal.
  ApiResponse AnswerPart(const RemoteRead& rr);
  RemoteReads remote_reads;  // empty: the reads are answered from `log`
  // Answers too large for one message, while their asking nodes read them.
  ParkedAnswers parked{kMaxParkedAnswers, kMaxTenantParkedAnswers, kParkedAnswerTtlUs};
  void Replay(const ApiRequest& r, const Principal& who, const std::string& tenant,
              Headers headers, Responder respond);
  void Settle(const ApiRequest& r, const Principal& who, const std::string& tenant,
              Headers headers, Responder respond);
  // What an admin write appends, planned from the tenant's log `from`:
  // status 200 with *d (and, for a replay, its *items), else the answer
  // refusing it. Pure of this node's state but the configuration.
  using PlanFn = ApiResponse (Impl::*)(const EventLog& from, const std::string& tenant, const std::string& body,
                                       EventDraft* d, uint64_t* items) const;
  ApiResponse PlanReplay(const EventLog& from, const std::string& tenant, const std::string& body, EventDraft* d,
                         uint64_t* items) const;
  ApiResponse PlanSettle(const EventLog& from, const std::string& tenant, const std::string& body, EventDraft* d,
                         uint64_t* items) const;
  // Runs `plan` over the tenant's log (here on the worker; in cluster mode
  // on the partition's node, as the read `route`), then `then` with the
  // draft, or answers the refusal.
  using Planned = std::function<void(EventDraft d, uint64_t items, Headers headers, Responder respond)>;
  void PlanWrite(const char* route, PlanFn plan, const std::string& tenant, const std::string& body,
                 Headers headers, Responder respond, Planned then);
  void Erase(const ApiRequest& r, const Principal& who, const std::string& tenant,
             Headers headers, Responder respond);
  // GET and POST /v1/admin/backfill (backfill_endpoint.cc).
  void Backfill(const ApiRequest& r, const Principal& who, const std::string& tenant,
                Headers headers, Responder respond);
  void ListKeys(const Principal& who, Headers headers, Responder respond);
  void CreateKey(const ApiRequest& r, const Principal& who, Headers headers, Responder respond);
  void RevokeKey(const ApiRequest& r, const Principal& who, const std::string& id,
                 Headers headers, Responder respond);
  void Reload(const ApiRequest& r, const Principal& who, Headers headers, Responder respond);
  void Backup(const ApiRequest& r, const Principal& who, Headers headers, Responder respond);
  // /v1/admin/sync (GET), /pause, /resume (endpoints.cc).
  void SyncControlCall(const ApiRequest& r, const Principal& who, Headers headers, Responder respond);
  // Appends `drafts` (the action first, then its admin.action) and answers
  // `created_status` {"status","event_id","seq"} plus `extra` once durable (200
  // when it was appended before: "duplicate"), 503 if not.
  void AppendAndAnswer(std::vector<EventDraft> drafts, Headers headers, Responder respond,
                       std::function<void(JsonObject*)> extra = {}, int created_status = 200);

  // The campaign API (campaign_endpoints.cc): `route` one of the k*Route
  // below, `id` the path's, `params` the query's.
  void Campaigns(const ApiRequest& r, const Principal& who, const std::string& tenant,
                 const std::string& route, const std::string& id, Params params, Headers headers,
                 Responder respond);
  ApiResponse CampaignRead(const EventLog& from, const std::string& route, const Params& p,
                           const std::string& tenant) const;
  // Cluster mode's campaign writes: appended through the front, answered
  // once the partition holds them (campaign_endpoints.cc).
  static constexpr int64_t kStoredWaitMs = 10000;
  // Declared before `waits`: its jobs read it while `waits` ends.
  std::atomic<bool> waits_stopping{false};  // set as the front drains: answer at once
  std::unique_ptr<Worker> waits;            // made by Start; gone as the console ends
  std::mutex waits_mu;                      // guards `waits` being posted to and ending
  // Posts to `waits`; false once the console has ended.
  bool PostWait(std::function<void()> job);
  struct StoredWait;
  // A pause or resume shared with the cluster, answered once every node
  // holds it or its time is up (SyncControlHooks::waiting).
  struct HeldWait {
    uint64_t count = 0, seq = 0;
    std::string tenant;
    std::chrono::steady_clock::time_point deadline;
    Headers headers;
    Responder respond;
  };
  void AwaitHeld(std::shared_ptr<HeldWait> w);
  void AnswerSyncChange(const std::string& tenant, bool duplicate, uint64_t seq, Headers headers,
                        const Responder& respond, const std::string& nodes = "");
  void AppendThenWaitStored(const std::string& tenant, std::vector<EventDraft> drafts,
                            Headers headers, Responder respond,
                            std::function<void(JsonObject*)> extra, int created);
  void PollStored(std::shared_ptr<StoredWait> w);
  void AnswerStored(StoredWait& w, bool stored, const std::string& stored_id, uint64_t seq);
  // The start check of `v` (customer, payment, steps, start, sender,
  // audience); an error when the log cannot be read.
  Status CheckOf(const EventLog& from, const std::string& tenant, const CampaignView& v,
                 std::vector<CampaignCheckItem>* out) const;
  // PlanFns: the body is an envelope of the path's id, the action and who
  // asks, then the request's body (campaign_endpoints.cc).
  ApiResponse PlanCustomer(const EventLog& from, const std::string& tenant, const std::string& body,
                           EventDraft* d, uint64_t* items) const;
  ApiResponse PlanPayment(const EventLog& from, const std::string& tenant, const std::string& body,
                          EventDraft* d, uint64_t* items) const;
  ApiResponse PlanCampaign(const EventLog& from, const std::string& tenant, const std::string& body,
                           EventDraft* d, uint64_t* items) const;
  ApiResponse PlanCampaignChange(const EventLog& from, const std::string& tenant,
                                 const std::string& body, EventDraft* d, uint64_t* items) const;
  EventDraft AdminAction(const ApiRequest& r, const Principal& who, const std::string& tenant,
                         std::string_view action, const std::string& target) const;
};

// The campaign API's routes (console.cc's table), and the reads that plan
// its writes where the tenant's log is (PlanWrite).
inline constexpr char kCustomersRoute[] = "/v1/customers";
inline constexpr char kCustomerRoute[] = "/v1/customers/{id}";
inline constexpr char kPaymentsRoute[] = "/v1/customers/{id}/payments";
inline constexpr char kCampaignsRoute[] = "/v1/campaigns";
inline constexpr char kCampaignRoute[] = "/v1/campaigns/{id}";
inline constexpr char kCampaignValidateRoute[] = "/v1/campaigns/{id}/validate";
inline constexpr char kCampaignTasksRoute[] = "/v1/campaigns/{id}/tasks";
inline constexpr char kCampaignResetRoute[] = "/v1/campaigns/{id}/tasks/reset";
inline constexpr char kCustomerPlanRoute[] = "/v1/customers#plan";
inline constexpr char kPaymentPlanRoute[] = "/v1/customers/payments#plan";
inline constexpr char kCampaignPlanRoute[] = "/v1/campaigns#plan";
inline constexpr char kCampaignChangePlanRoute[] = "/v1/campaigns/change#plan";
// Answered by the partition's node: {"seq","event_id"} of the event of an
// idempotency key (params system, key), 404 while it holds none.
inline constexpr char kStoredRoute[] = "/v1/campaigns#stored";
bool IsCampaignRoute(const std::string& route);

// `a` with `headers` (the limits' headers) added.
ApiResponse With(ApiResponse a, Console::Impl::Headers headers);

}  // namespace dfm
