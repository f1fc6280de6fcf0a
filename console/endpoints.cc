// The read and admin endpoints (console/console.h, docs/http-api.md).
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "console/console_internal.h"
#include "console/remote_read.h"
#include "replay-tools/redrive_items.h"
#include "replay-tools/replay.h"
#include "replay-tools/tool_log.h"
#include "sync/contact_model.h"
#include "sync/redrive.h"
#include "sync/settle.h"
#include "util/json.h"
#include "util/logging.h"
#include "util/strings.h"

namespace dfm {

namespace {

ApiResponse Document(std::string body, Console::Impl::Headers headers,
                     const char* type = "application/json") {
  ApiResponse a;
  a.content_type = type;
  a.body = std::move(body);
  return With(std::move(a), std::move(headers));
}

}  // namespace

EventDraft Console::Impl::AdminAction(const ApiRequest& r, const Principal& who,
                                      const std::string& tenant, std::string_view action,
                                      const std::string& target) const {
  std::string agent = r.Header("user-agent");
  if (agent.size() > 256) agent.resize(256);
  EventDraft d;
  d.tenant = tenant;
  d.stream = "admin";
  d.type = "admin.action";
  JsonObject o;
  o.Str("action", std::string(action))
      .Str("target", target)
      .Str("credential", who.credential)
      .Str("peer", r.peer)
      .Str("client", r.client.empty() ? r.peer : r.client)
      .Str("request_id", r.request_id)
      .Str("user_agent", agent);
  if (!who.key_id.empty()) o.Str("key_id", who.key_id).Str("key_name", who.name);
  d.payload = o.Finish();
  return d;
}

void Console::Impl::AppendAndAnswer(std::vector<EventDraft> drafts, Headers headers,
                                    Responder respond, std::function<void(JsonObject*)> extra,
                                    int created_status) {
  log->AppendAsync(std::move(drafts), [this, self = shared_from_this(),
                                       headers = std::move(headers), respond = std::move(respond),
                                       extra = std::move(extra), created_status](
                                          const Status& s, const std::vector<AppendOutcome>& o) {
    if (!s.ok()) {
      (s.code() == Status::Code::kTooLarge ? counters->rejected : counters->unavailable)
          .fetch_add(1);
      respond(With(AppendRefused(s, "the event log cannot accept writes; retry later"),
                   std::move(headers)));
      return;
    }
    (o[0].duplicate ? counters->duplicates : counters->accepted).fetch_add(1);
    JsonObject body;
    body.Str("status", o[0].duplicate ? "duplicate" : "accepted")
        .Str("event_id", o[0].id.ToString())
        .UInt("seq", o[0].seq);
    if (extra) extra(&body);
    ApiResponse a = Document(body.Finish(), std::move(headers));
    if (!o[0].duplicate) a.status = created_status;
    respond(std::move(a));
  });
}

// POST /v1/admin/replay: a replay.requested whose items are rebuilt from
// the log, never taken as posted (replay-tools/redrive_items.h).
ApiResponse Console::Impl::PlanReplay(const EventLog& from, const std::string& tenant, const std::string& body,
                                      EventDraft* d, uint64_t* items) const {
  ReplayRequest posted;
  Status st = DecodeReplayRequest(body, &posted);
  if (!st.ok() || posted.items.empty())
    return JsonError(400, "malformed_body", st.ok() ? "\"items\" is empty" : st.message());
  ReplayOptions base;
  base.mapper = mapper;
  const Config& now = Live();  // one configuration for the whole plan
  base.context = [this, &now](const std::string& t) {
    SyncContext ctx = SyncContextFor(now, t);
    ctx.now_us = clock->NowMicros();
    return ctx;
  };
  ReplayRequest rebuilt;
  Status rs = RebuildRedriveItems(from, tenant, posted, base, &rebuilt);
  if (rs.code() == Status::Code::kInvalidArgument) return JsonError(422, "not_redrivable", rs.message());
  if (!rs.ok()) return JsonError(503, "log_unavailable", rs.message());
  *d = ReplayRequestDraft(tenant, rebuilt);
  *items = rebuilt.items.size();
  return ApiResponse{};
}

void Console::Impl::Replay(const ApiRequest& r, const Principal& who, const std::string& tenant,
                           Headers headers, Responder respond) {
  ReplayRequest posted;
  Status st = DecodeReplayRequest(r.body, &posted);
  if (!st.ok() || posted.items.empty()) {
    counters->rejected.fetch_add(1);
    respond(With(JsonError(400, "malformed_body", st.ok() ? "\"items\" is empty" : st.message()),
                 std::move(headers)));
    return;
  }
  PlanWrite(kReplayPlanRoute, &Impl::PlanReplay, tenant, r.body, std::move(headers), std::move(respond),
            [this, r, who, tenant](EventDraft d, uint64_t n, Headers h, Responder answer) {
              Logger("http")->info("request_id={} tenant={} event=replay_requested items={} by={}",
                                   r.request_id, tenant, n, who.credential);
              std::vector<EventDraft> drafts;
              drafts.push_back(AdminAction(r, who, tenant, "replay", d.idempotency_key));
              drafts.insert(drafts.begin(), std::move(d));
              AppendAndAnswer(std::move(drafts), std::move(h), std::move(answer),
                              [n](JsonObject* o) { o->UInt("items", n); });
            });
}

// POST /v1/admin/settle: the identity.settled event that settles the
// conflict the body names (sync/settle.h), read from the log first.
ApiResponse Console::Impl::PlanSettle(const EventLog& from, const std::string& tenant, const std::string& body,
                                      EventDraft* d, uint64_t* items) const {
  SettleRequest req;
  Status st = DecodeSettleRequest(body, &req);
  if (!st.ok()) return JsonError(400, "malformed_body", st.message());
  std::vector<Event> found;
  st = from.Read(req.conflict_seq, 1, &found);
  if (!st.ok()) return JsonError(503, "log_unavailable", st.message());
  if (found.empty() || found[0].seq != req.conflict_seq || found[0].type != ev::kIdentityConflict ||
      found[0].tenant != tenant)
    return JsonError(404, "unknown_conflict",
                     "event " + std::to_string(req.conflict_seq) + " is not an identity.conflict of tenant " + tenant);
  st = PlanSettlement(found[0], tenant, req, d);
  if (!st.ok()) return JsonError(422, "not_a_candidate", st.message());
  *items = 0;
  return ApiResponse{};
}

void Console::Impl::Settle(const ApiRequest& r, const Principal& who, const std::string& tenant,
                           Headers headers, Responder respond) {
  SettleRequest req;
  Status st = DecodeSettleRequest(r.body, &req);
  if (!st.ok()) {
    counters->rejected.fetch_add(1);
    respond(With(JsonError(400, "malformed_body", st.message()), std::move(headers)));
    return;
  }
  PlanWrite(kSettlePlanRoute, &Impl::PlanSettle, tenant, r.body, std::move(headers), std::move(respond),
            [this, r, who, tenant, seq = req.conflict_seq](EventDraft d, uint64_t, Headers h, Responder answer) {
              Logger("http")->info("request_id={} tenant={} event=identity_settled conflict={} by={}",
                                   r.request_id, tenant, seq, who.credential);
              std::vector<EventDraft> drafts;
              EventDraft audit = AdminAction(r, who, tenant, "settle", d.idempotency_key);
              drafts.push_back(std::move(d));
              drafts.push_back(std::move(audit));
              AppendAndAnswer(std::move(drafts), std::move(h), std::move(answer));
            });
}

void Console::Impl::PlanWrite(const char* route, PlanFn plan, const std::string& tenant, const std::string& body,
                              Headers headers, Responder respond, Planned then) {
  // A refusal is answered as it is, counted here.
  auto refuse = [this](ApiResponse a, Headers h, const Responder& answer) {
    (a.status == 503 ? counters->unavailable : counters->rejected).fetch_add(1);
    answer(With(std::move(a), std::move(h)));
  };
  if (!remote_reads) {
    worker->Post([this, plan, tenant, body, headers = std::move(headers), respond = std::move(respond),
                  then = std::move(then), refuse]() mutable {
      EventDraft d;
      uint64_t n = 0;
      ApiResponse a = (this->*plan)(*log, tenant, body, &d, &n);
      if (a.status != 200) return refuse(std::move(a), std::move(headers), respond);
      then(std::move(d), n, std::move(headers), std::move(respond));
    });
    return;
  }
  // Cluster mode: planned where the tenant's partition runs; appended
  // through this node's front (the ingest stream) like any webhook.
  remote_reads(tenant, EncodeRemoteRead(RemoteRead{route, tenant, {{"body", body}}}),
               [self = shared_from_this(), tenant, headers = std::move(headers),
                respond = std::move(respond), then = std::move(then),
                refuse](Status s, std::string answer) mutable {
                 ApiResponse a;
                 EventDraft d;
                 uint64_t n = 0;
                 if (!s.ok()) {
                   a = JsonError(503, "owner_unreachable", s.ToString() + "; retry in a few seconds");
                   a.headers.emplace_back("Retry-After", "2");
                 } else if (!DecodeReadAnswer(answer, &a) ||
                            (a.status == 200 && !DecodePlannedDraft(a.body, &d, &n))) {
                   a = JsonError(503, "owner_unreachable", "the partition's node answered something unreadable");
                 }
                 if (a.status != 200) return refuse(std::move(a), std::move(headers), respond);
                 d.tenant = tenant;  // the asker's: the planned draft carries none
                 then(std::move(d), n, std::move(headers), std::move(respond));
               });
}

// POST /v1/admin/erase {"contact", "reason", "force"?}: erases the person
// (docs/privacy.md); the admin.action that records who asked follows the
// contact.erased event (action "erase", or "erase_forced" when `force`
// erased past consent pushes on their way).
void Console::Impl::Erase(const ApiRequest& r, const Principal& who, const std::string& tenant,
                          Headers headers, Responder respond) {
  simdjson::dom::parser parser;
  simdjson::dom::object body;
  std::string_view contact, reason;
  bool force = false;
  if (parser.parse(r.body.data(), r.body.size()).get(body) != simdjson::SUCCESS ||
      body["contact"].get(contact) != simdjson::SUCCESS || contact.empty() ||
      body["reason"].get(reason) != simdjson::SUCCESS || reason.empty() ||
      (body["force"].error() != simdjson::NO_SUCH_FIELD &&
       body["force"].get(force) != simdjson::SUCCESS)) {
    counters->rejected.fetch_add(1);
    respond(With(JsonError(400, "malformed_body",
                           "expected {\"contact\": \"<contact id>\", \"reason\": \"<why>\", "
                           "\"force\": true|false (optional)}"),
                 std::move(headers)));
    return;
  }
  if (!erase) {
    respond(With(JsonError(503, "unavailable", "this process does not seal personal data (cluster mode)"),
                 std::move(headers)));
    return;
  }
  eraser->Post([this, r, who, tenant, contact = std::string(contact), reason = std::string(reason),
                force, headers = std::move(headers), respond = std::move(respond)]() mutable {
    EraseAnswer a;
    Status s = erase(tenant, contact, reason, who.credential, force, &a);
    if (s.IsNotFound()) {
      counters->rejected.fetch_add(1);
      respond(With(JsonError(404, "unknown_contact", s.message()), std::move(headers)));
      return;
    }
    if (s.IsFailedPrecondition()) {
      counters->rejected.fetch_add(1);
      respond(With(JsonError(409, "consent_pushes_open", s.message()), std::move(headers)));
      return;
    }
    if (!s.ok()) {
      counters->unavailable.fetch_add(1);
      respond(With(JsonError(503, "erase_failed", s.message()), std::move(headers)));
      return;
    }
    Logger("http")->info("request_id={} tenant={} event=contact_erased contact={} seq={} by={}",
                         r.request_id, tenant, contact, a.seq, who.credential);
    std::vector<EventDraft> drafts{
        AdminAction(r, who, tenant, force ? "erase_forced" : "erase", "erase/" + contact)};
    AppendAndAnswer(std::move(drafts), std::move(headers), std::move(respond), [a](JsonObject* o) {
      o->UInt("erased_seq", a.seq)
          .Bool("already_erased", a.already)
          .UInt("keys_destroyed", a.keys)
          .UInt("events", a.events)
          .UInt("sources", a.sources)
          .UInt("subjects", a.subjects);
    });
  });
}

void Console::Impl::ListKeys(const Principal& who, Headers headers, Responder respond) {
  JsonArray items;
  for (const auto& k : keys.List())
    if (who.tenant == kAllTenants || k.tenant == who.tenant) items.Raw(ApiKeyJson(k));
  respond(Document(JsonObject().Raw("items", items.Finish()).Finish(), std::move(headers)));
}

// POST /v1/admin/keys {"name", "role", "tenant"}: the new key's token is
// in the answer, and nowhere else ever.
void Console::Impl::CreateKey(const ApiRequest& r, const Principal& who, Headers headers,
                              Responder respond) {
  NewKeyRequest asked;
  Status st = DecodeNewKeyRequest(r.body, &asked);
  const std::string tenant = !asked.tenant.empty()           ? asked.tenant
                             : who.tenant == kAllTenants ? std::string("default")
                                                         : who.tenant;
  // A one-tenant key is refused another tenant's name before the name is
  // looked up: it does not learn which tenants exist.
  if (st.ok() && who.tenant != kAllTenants && tenant != who.tenant) {
    counters->rejected.fetch_add(1);
    respond(
        With(JsonError(403, "forbidden", "this key makes keys of tenant " + who.tenant + " only"),
             std::move(headers)));
    return;
  }
  const auto& all = Live().tenants();
  if (st.ok() && tenant != kAllTenants && std::find(all.begin(), all.end(), tenant) == all.end())
    st = Status::InvalidArgument("no tenant named " + tenant);
  if (!st.ok()) {
    counters->rejected.fetch_add(1);
    respond(With(JsonError(400, "malformed_body", st.message()), std::move(headers)));
    return;
  }
  NewApiKey fresh = MakeApiKey();
  ApiKeyRecord k;
  k.id = fresh.id;
  k.tenant = std::string(tenant);
  k.role = asked.role;
  k.name = asked.name;
  k.secret_sha256 = HashApiSecret(fresh.secret);
  k.created_by = who.credential;
  std::vector<EventDraft> drafts;
  drafts.push_back(ApiKeyCreatedDraft(k, r.request_id));
  drafts.push_back(AdminAction(r, who, drafts[0].tenant, "key.create", k.id));
  log->AppendAsync(std::move(drafts), [this, self = shared_from_this(), k, token = fresh.token,
                                       headers = std::move(headers),
                                       respond = std::move(respond)](
                                          const Status& s, const std::vector<AppendOutcome>& out) mutable {
    if (!s.ok()) {
      counters->unavailable.fetch_add(1);
      respond(With(JsonError(503, "log_unavailable", "the key could not be recorded; retry"),
                   std::move(headers)));
      return;
    }
    k.created_us = clock->NowMicros();
    Event e;
    e.type = std::string(kApiKeyCreated);
    e.recorded_at_us = k.created_us;
    e.payload = ApiKeyCreatedDraft(k, "").payload;
    keys.Apply(e);
    ShareKeyEvent(e);
    counters->accepted.fetch_add(1);
    ApiResponse a = Document(JsonObject::Extend(ApiKeyJson(k)).Str("token", token).UInt("seq", out[0].seq).Finish(),
                             std::move(headers));
    a.status = 201;
    respond(std::move(a));
  });
}

void Console::Impl::RevokeKey(const ApiRequest& r, const Principal& who, const std::string& id,
                              Headers headers, Responder respond) {
  auto k = keys.Find(id);
  if (!k || (who.tenant != kAllTenants && k->tenant != who.tenant)) {
    counters->rejected.fetch_add(1);
    respond(With(JsonError(404, "unknown_key", "no key " + id), std::move(headers)));
    return;
  }
  std::vector<EventDraft> drafts;
  drafts.push_back(ApiKeyRevokedDraft(*k, who.credential, r.request_id));
  drafts.push_back(AdminAction(r, who, drafts[0].tenant, "key.revoke", k->id));
  log->AppendAsync(std::move(drafts), [this, self = shared_from_this(), k = *k, who,
                                       headers = std::move(headers),
                                       respond = std::move(respond)](
                                          const Status& s, const std::vector<AppendOutcome>& out) mutable {
    if (!s.ok()) {
      counters->unavailable.fetch_add(1);
      respond(With(JsonError(503, "log_unavailable", "the revocation could not be recorded; retry"),
                   std::move(headers)));
      return;
    }
    Event e;
    e.type = std::string(kApiKeyRevoked);
    e.recorded_at_us = clock->NowMicros();
    e.payload = ApiKeyRevokedDraft(k, who.credential, "").payload;
    keys.Apply(e);  // a duplicate revocation changes nothing
    ShareKeyEvent(e);
    counters->accepted.fetch_add(1);
    respond(Document(JsonObject()
                         .Str("status", out[0].duplicate ? "duplicate" : "revoked")
                         .Str("id", k.id)
                         .UInt("seq", out[0].seq)
                         .Finish(),
                     std::move(headers)));
  });
}

// POST /v1/admin/reload: the configuration file read again, as SIGHUP does
// (docs/http-api.md). A key of every tenant only. 200 {"status":"reloaded",
// "summary", "event_id", "seq"} once the admin.action is durable; 422
// reload_refused with why, the old configuration staying whole.
void Console::Impl::Reload(const ApiRequest& r, const Principal& who, Headers headers,
                           Responder respond) {
  if (who.tenant != kAllTenants) {
    counters->rejected.fetch_add(1);
    respond(With(JsonError(403, "forbidden", "only a key of every tenant may reload the configuration"),
                 std::move(headers)));
    return;
  }
  if (!reload) {
    respond(With(JsonError(503, "unavailable", "this process does not reload its configuration"),
                 std::move(headers)));
    return;
  }
  // On the worker: the admin.action is durable before the configuration is
  // put in place (a log that cannot write leaves the old one, unrecorded
  // changes never live).
  worker->Post([this, self = shared_from_this(), r, who, headers = std::move(headers),
                respond = std::move(respond)]() mutable {
    std::string summary;
    AppendOutcome recorded;
    bool sound = false;  // the new configuration passed its checks
    Status s = reload(&summary, [&](const std::string& change) {
      sound = true;
      return log->Append(AdminAction(r, who, "default", "reload", change), &recorded);
    });
    if (!s.ok() && !sound) {
      counters->rejected.fetch_add(1);
      respond(With(JsonError(422, "reload_refused", s.message()), std::move(headers)));
      return;
    }
    if (!s.ok()) {
      counters->unavailable.fetch_add(1);
      respond(With(AppendRefused(s,
                                 "the event log cannot accept writes; the configuration in use "
                                 "stays: retry later"),
                   std::move(headers)));
      return;
    }
    (recorded.duplicate ? counters->duplicates : counters->accepted).fetch_add(1);
    JsonObject body;
    body.Str("status", recorded.duplicate ? "duplicate" : "accepted")
        .Str("event_id", recorded.id.ToString())
        .UInt("seq", recorded.seq)
        .Str("summary", summary);
    respond(Document(body.Finish(), std::move(headers)));
  });
}

// POST /v1/admin/backup {"into": "/abs/dir", "keep": N}: a backup of the
// whole data directory (storage/backup.h), every tenant's: a key of every
// tenant only. Runs on the console's worker; the admin.action follows.
void Console::Impl::Backup(const ApiRequest& r, const Principal& who, Headers headers,
                           Responder respond) {
  if (who.tenant != kAllTenants) {
    counters->rejected.fetch_add(1);
    respond(With(JsonError(403, "forbidden", "only a key of every tenant may back up the data"),
                 std::move(headers)));
    return;
  }
  simdjson::dom::parser parser;
  simdjson::dom::object body;
  std::string_view into;
  int64_t keep = 0;
  if (parser.parse(r.body.data(), r.body.size()).get(body) != simdjson::SUCCESS ||
      body["into"].get(into) != simdjson::SUCCESS || into.empty() || into[0] != '/' ||
      (body["keep"].error() != simdjson::NO_SUCH_FIELD &&
       (body["keep"].get(keep) != simdjson::SUCCESS || keep < 0 || keep > 100000))) {
    counters->rejected.fetch_add(1);
    respond(With(JsonError(400, "malformed_body",
                           "expected {\"into\": \"<absolute directory>\", \"keep\": <backups to keep, 0: all>}"),
                 std::move(headers)));
    return;
  }
  if (!backup) {
    respond(With(JsonError(503, "unavailable", "this process does not take backups (cluster mode)"),
                 std::move(headers)));
    return;
  }
  worker->Post([this, r, who, into = std::string(into), keep, headers = std::move(headers),
                respond = std::move(respond)]() mutable {
    std::string manifest;
    Status s = backup(into, static_cast<int>(keep), &manifest);
    if (!s.ok()) {
      counters->unavailable.fetch_add(1);
      respond(With(JsonError(503, "backup_failed", s.message()), std::move(headers)));
      return;
    }
    while (!manifest.empty() && manifest.back() == '\n') manifest.pop_back();
    std::vector<EventDraft> drafts{AdminAction(r, who, "default", "backup", into)};
    AppendAndAnswer(std::move(drafts), std::move(headers), std::move(respond),
                    [manifest](JsonObject* o) { o->Raw("backup", manifest); });
  });
}

namespace {

// Why `scope` is not one `who` may pause or resume in `config`; "" when it is.
std::string ScopeRefusal(const SyncScope& scope, const Principal& who, const Config& config) {
  if (who.tenant != kAllTenants && scope.tenant != who.tenant)
    return "this key pauses and resumes tenant " + who.tenant + " only (give \"tenant\": \"" +
           who.tenant + "\")";
  const auto& tenants = config.tenants();
  if (scope.tenant != kEverything && std::find(tenants.begin(), tenants.end(), scope.tenant) == tenants.end())
    return "no tenant named " + scope.tenant;
  if (scope.system == kEverything) return "";
  for (const auto& t : tenants)
    if ((scope.tenant == kEverything || scope.tenant == t) && config.Systems(t).count(scope.system)) return "";
  return "no system named " + scope.system + (scope.tenant == kEverything ? "" : " in tenant " + scope.tenant);
}

}  // namespace

// GET /v1/admin/sync: the pauses and limits in force. POST
// /v1/admin/sync/pause and /resume (sync/sync_control.h): the event is
// appended first; once durable the state changes and the connectors are
// woken; the answer carries the state after (in cluster mode, once every
// node holds it or its wait is up: AwaitHeld). A key of one tenant acts on
// its tenant only (a body without "tenant" means it).
void Console::Impl::SyncControlCall(const ApiRequest& r, const Principal& who, Headers headers,
                                    Responder respond) {
  if (!sync_control.control) {
    respond(With(JsonError(503, "unavailable", "this process offers no sync pause ([sync] is off)"),
                 std::move(headers)));
    return;
  }
  if (r.method == "GET") {
    respond(Document(sync_control.control->Json(who.tenant), std::move(headers)));
    return;
  }
  const bool resume = r.path == "/v1/admin/sync/resume";
  SyncControlRequest req;
  Status st = DecodeSyncControlRequest(r.body, resume, &req);
  if (st.ok() && who.tenant != kAllTenants && req.scope.tenant == kEverything) req.scope.tenant = who.tenant;
  std::string refused = st.ok() ? ScopeRefusal(req.scope, who, Live()) : st.message();
  if (!refused.empty()) {
    counters->rejected.fetch_add(1);
    const bool forbidden = st.ok() && who.tenant != kAllTenants && req.scope.tenant != who.tenant;
    respond(With(JsonError(forbidden ? 403 : 400, forbidden ? "forbidden" : "malformed_body", refused),
                 std::move(headers)));
    return;
  }
  std::vector<EventDraft> drafts;
  const int64_t now = clock->NowMicros();
  drafts.push_back(resume ? SyncResumedDraft(req, who.credential, r.request_id, now)
                          : SyncPausedDraft(req, who.credential, r.request_id, now));
  const std::string target = req.scope.tenant + "/" + req.scope.system;
  drafts.push_back(AdminAction(r, who, drafts[0].tenant, resume ? "sync.resume" : "sync.pause", target));
  const EventDraft applied = drafts[0];
  log->AppendAsync(std::move(drafts), [this, self = shared_from_this(), applied,
                                       tenant = who.tenant, headers = std::move(headers),
                                       respond = std::move(respond)](
                                          const Status& s,
                                          const std::vector<AppendOutcome>& out) mutable {
    if (!s.ok()) {
      counters->unavailable.fetch_add(1);
      ApiResponse a = JsonError(503, "log_unavailable", "the sync control could not be recorded; retry");
      a.headers.emplace_back("Retry-After", "5");
      respond(With(std::move(a), std::move(headers)));
      return;
    }
    if (!out[0].duplicate) {
      Event e;
      e.type = applied.type;
      e.payload = applied.payload;
      e.seq = out[0].seq;
      uint64_t count = 0;
      if (sync_control.share) {
        if (Status shared = sync_control.share(e, &count); !shared.ok()) {
          counters->unavailable.fetch_add(1);
          ApiResponse a = JsonError(503, "not_shared",
                                    "recorded, but not yet known to every node (" + shared.ToString() + "); retry");
          a.headers.emplace_back("Retry-After", "5");
          respond(With(std::move(a), std::move(headers)));
          return;
        }
        // Shared: the sequence, folded in its order, reached `control`
        // (applying `e` again here could undo a later resume).
      } else {
        sync_control.control->Apply(e);
      }
      if (sync_control.wake) sync_control.wake();
      if (sync_control.share && sync_control.waiting) {
        auto w = std::make_shared<HeldWait>();
        w->count = count;
        w->seq = out[0].seq;
        w->tenant = tenant;
        w->deadline =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(sync_control.held_wait_ms);
        w->headers = std::move(headers);
        w->respond = std::move(respond);
        // Its store reads on the waits worker, never on the log's thread.
        if (PostWait([this, self = shared_from_this(), w] { AwaitHeld(w); })) return;
        headers = std::move(w->headers);
        respond = std::move(w->respond);
      }
    }
    AnswerSyncChange(tenant, out[0].duplicate, out[0].seq, std::move(headers), respond);
  });
}

void Console::Impl::AnswerSyncChange(const std::string& tenant, bool duplicate, uint64_t seq,
                                     Headers headers, const Responder& respond,
                                     const std::string& nodes) {
  counters->accepted.fetch_add(1);
  JsonObject body = JsonObject::Extend(sync_control.control->Json(tenant));
  body.Str("status", duplicate ? "duplicate" : "recorded").UInt("seq", seq);
  if (!nodes.empty()) body.Raw("nodes", nodes);
  respond(Document(body.Finish(), std::move(headers)));
}

// Asks every 50 ms which nodes have not applied the shared sequence up to
// the change yet; answers once none, or at the deadline naming them. On
// the waits worker (its reads of the shared store, each up to ~1.5 s
// when NATS is slow, hold the other waits behind it).
void Console::Impl::AwaitHeld(std::shared_ptr<HeldWait> w) {
  std::vector<std::string> nodes, waiting;
  Status s = sync_control.waiting(w->count, &nodes, &waiting);
  const bool late = waits_stopping.load() || std::chrono::steady_clock::now() >= w->deadline;
  if (!(s.ok() && waiting.empty()) && !late) {
    const auto due = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
    const bool posted = PostWait([this, self = shared_from_this(), w, due] {
      std::this_thread::sleep_until(due);  // jobs come in due order: none waits behind another
      AwaitHeld(w);
    });
    if (posted) return;
  }
  JsonArray held, still;
  for (const std::string& n : nodes)
    if (std::find(waiting.begin(), waiting.end(), n) == waiting.end()) held.Str(n);
  for (const std::string& n : waiting) still.Str(n);
  JsonObject out;
  out.Raw("held", held.Finish()).Raw("waiting", still.Finish());
  if (!s.ok()) out.Str("unknown", s.ToString());  // the acks could not be read
  AnswerSyncChange(w->tenant, false, w->seq, std::move(w->headers), w->respond, out.Finish());
}

}  // namespace dfm
