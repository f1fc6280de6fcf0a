#include "console/console.h"

#include <algorithm>

#include "connectors/common/webhook_source.h"
#include "console/console_internal.h"
#include "util/admin_token.h"
#include "util/crypto.h"
#include "util/json.h"
#include "util/logging.h"

namespace dfm {

namespace {

// A route: its method and path ("{id}" matches one segment), the role it
// needs (none: public), and whether it is served only where the admin
// endpoints are.
struct Route {
  const char* method;
  const char* path;
  std::optional<ApiRole> role;
  bool admin_only;
};

const Route kRoutes[] = {
    {"GET", "/docs/visual", std::nullopt, false},
    {"POST", "/docs/visual", std::nullopt, false},
    {"POST", "/docs/visual/sign-in", std::nullopt, false},
    {"POST", "/docs/visual/sign-out", std::nullopt, false},
    {"GET", "/v1/openapi.json", std::nullopt, false},
    {"GET", "/v1/contacts/trace", ApiRole::kViewer, false},
    {"GET", "/v1/contacts/as-of", ApiRole::kViewer, false},
    {"GET", "/v1/events", ApiRole::kViewer, false},
    {"GET", "/v1/audit/opt-outs", ApiRole::kViewer, false},
    {"GET", "/v1/audit/violations", ApiRole::kViewer, false},
    {"GET", "/v1/audit/consent-conflicts", ApiRole::kViewer, false},
    {"GET", "/v1/dead-letters", ApiRole::kViewer, false},
    {"POST", "/v1/admin/replay", ApiRole::kOperator, true},
    {"POST", "/v1/admin/settle", ApiRole::kOperator, true},
    {"POST", "/v1/admin/erase", ApiRole::kAdmin, true},
    {"GET", "/v1/admin/backfill", ApiRole::kOperator, true},
    {"POST", "/v1/admin/backfill", ApiRole::kOperator, true},
    {"GET", "/v1/admin/keys", ApiRole::kAdmin, true},
    {"POST", "/v1/admin/keys", ApiRole::kAdmin, true},
    {"DELETE", "/v1/admin/keys/{id}", ApiRole::kAdmin, true},
    {"POST", "/v1/admin/reload", ApiRole::kAdmin, true},
    {"POST", "/v1/admin/backup", ApiRole::kAdmin, true},
    {"GET", "/v1/admin/sync", ApiRole::kOperator, true},
    {"POST", "/v1/admin/sync/pause", ApiRole::kOperator, true},
    {"POST", "/v1/admin/sync/resume", ApiRole::kOperator, true},
    {"GET", kCustomerRoute, ApiRole::kViewer, false},
    {"PUT", kCustomerRoute, ApiRole::kOperator, false},
    {"POST", kCustomersRoute, ApiRole::kOperator, false},
    {"POST", kPaymentsRoute, ApiRole::kOperator, false},
    {"GET", kCampaignsRoute, ApiRole::kViewer, false},
    {"POST", kCampaignsRoute, ApiRole::kOperator, false},
    {"GET", kCampaignRoute, ApiRole::kViewer, false},
    {"POST", kCampaignValidateRoute, ApiRole::kViewer, false},
    {"GET", kCampaignTasksRoute, ApiRole::kViewer, false},
    {"POST", "/v1/campaigns/{id}/start", ApiRole::kOperator, false},
    {"POST", "/v1/campaigns/{id}/pause", ApiRole::kOperator, false},
    {"POST", "/v1/campaigns/{id}/resume", ApiRole::kOperator, false},
    {"POST", "/v1/campaigns/{id}/cancel", ApiRole::kOperator, false},
    {"POST", kCampaignResetRoute, ApiRole::kOperator, false},
};

// Whether `path` matches `pattern`; *param gets what "{id}" matched.
bool PathMatches(std::string_view pattern, std::string_view path, std::string* param) {
  const size_t brace = pattern.find('{');
  if (brace == std::string_view::npos) return pattern == path;
  if (path.substr(0, brace) != pattern.substr(0, brace)) return false;
  const std::string_view suffix = pattern.substr(pattern.find('}', brace) + 1);
  std::string_view rest = path.substr(brace);
  if (rest.size() <= suffix.size() || rest.substr(rest.size() - suffix.size()) != suffix) return false;
  rest.remove_suffix(suffix.size());
  if (rest.find('/') != std::string_view::npos) return false;
  *param = std::string(rest);
  return true;
}

// The id a presented "Bearer dfm_<id>_<secret>" names, valid or not; "".
std::string PresentedKeyId(const ApiRequest& r) {
  const std::string auth = r.Header("authorization");
  std::string id, secret;
  if (auth.rfind("Bearer ", 0) != 0 || !SplitApiKey(auth.substr(7), &id, &secret)) return "";
  return id;
}

}  // namespace

std::string ApiRequest::Header(std::string_view lower_name) const {
  auto it = headers.find(std::string(lower_name));
  return it == headers.end() ? "" : it->second;
}

std::string Param(const Params& p, std::string_view name) {
  for (const auto& [k, v] : p)
    if (k == name) return v;
  return "";
}

ApiResponse JsonError(int status, const std::string& error, const std::string& detail) {
  ApiResponse r;
  r.status = status;
  r.body = JsonObject().Str("error", error).Str("detail", detail).Finish();
  return r;
}

ApiResponse AppendRefused(const Status& s, const std::string& detail) {
  if (s.code() == Status::Code::kTooLarge) return JsonError(413, "body_too_large", s.message());
  ApiResponse a = JsonError(503, "log_unavailable", detail);
  a.headers.emplace_back("Retry-After", "5");
  return a;
}

ApiResponse With(ApiResponse a, Console::Impl::Headers headers) {
  for (auto& h : headers) a.headers.push_back(std::move(h));
  return a;
}

std::string JsonLinesDocument(const std::string& lines) {
  std::string out = "{\"items\":[";
  size_t start = 0;
  bool first = true;
  while (start < lines.size()) {
    size_t end = lines.find('\n', start);
    if (end == std::string::npos) end = lines.size();
    if (end > start) {
      if (!first) out += ',';
      out.append(lines, start, end - start);
      first = false;
    }
    start = end + 1;
  }
  return out + "]}";
}

const std::vector<std::string>& ConsoleRoutes() {
  static const std::vector<std::string> routes = [] {
    std::vector<std::string> r;
    for (const auto& route : kRoutes) r.push_back(std::string(route.method) + " " + route.path);
    return r;
  }();
  return routes;
}

Console::Console(const Config& config, EventLog* log, const Clock* clock, ConsoleCounters* counters)
    : impl_(std::make_shared<Impl>(config, log, clock, counters)) {}

Console::~Console() {
  Impl& m = *impl_;
  m.waits_stopping.store(true);  // writes waiting to be seen are answered "applying"
  {
    std::lock_guard<std::mutex> lk(m.poll_mu);
    m.polling_stopped = true;
  }
  m.poll_cv.notify_all();
  if (m.key_poller.joinable()) m.key_poller.join();
  // The workers end now, running what they hold while the console's
  // members exist; a callback that comes later finds no `waits` (PostWait).
  std::unique_ptr<Worker> waits;
  {
    std::lock_guard<std::mutex> lk(m.waits_mu);
    waits = std::move(m.waits);
  }
  waits.reset();
  m.eraser.reset();
  m.worker.reset();
}

void Console::Draining() { impl_->waits_stopping.store(true); }

bool Console::Impl::PostWait(std::function<void()> job) {
  std::lock_guard<std::mutex> lk(waits_mu);
  if (!waits) return false;
  waits->Post(std::move(job));
  return true;
}

void Console::SetSharedLimits(std::shared_ptr<CasStore> store) {
  impl_->per_key.Share(store);
  impl_->per_tenant.Share(std::move(store));
}

void Console::SetSharedKeys(std::shared_ptr<SharedKeys> shared) {
  Impl& m = *impl_;
  m.shared_keys = std::move(shared);
  // What this node made before a restart and could not share: in force
  // here at once (the log took each; a revocation stands whatever the
  // bucket says of its key), shared by the first poll.
  std::vector<Event> left;
  if (Status ls = SharedKeys::LoadUnshared(m.config.data_dir(), &left); !ls.ok())
    Logger("http")->error("event=unshared_keys_unread error=\"{}\" read={}", ls.ToString(),
                          left.size());
  for (const Event& e : left) m.keys.Apply(e);
  if (!left.empty()) {
    std::lock_guard<std::mutex> lk(m.poll_mu);
    m.unshared.insert(m.unshared.begin(), left.begin(), left.end());  // first, as made
    m.KeepUnshared();
  }
  size_t n = 0;
  Status s = m.shared_keys->FoldInto(&m.keys, &n);
  if (!s.ok()) Logger("http")->warn("event=shared_keys_unread error=\"{}\"", s.ToString());
  m.counters->shared_keys_stale.store(s.ok() ? 0 : 1);
  m.key_poller = std::thread([&m] { m.PollSharedKeys(); });
}

void Console::SetSessionSecret(std::string secret) { impl_->session_secret = std::move(secret); }

void Console::SetAttentionSource(AttentionSource source) { impl_->attention_source = std::move(source); }

void Console::SetRemoteReads(RemoteReads ask) { impl_->remote_reads = std::move(ask); }
void Console::DropParkedAnswers(const std::string& tenant) { impl_->parked.DropTenant(tenant); }

void Console::AnswerRemoteRead(const EventLog& from, std::string request,
                               std::function<void(std::string)> reply) {
  impl_->AnswerRemoteRead(from, std::move(request), std::move(reply));
}

void Console::Impl::ShareKeyEvent(const Event& e) {
  if (!shared_keys) return;
  Status s = shared_keys->Publish(e);
  if (s.ok()) return;
  Logger("http")->error("event=shared_key_unwritten type={} error=\"{}\" effect=\"tried again every second\"",
                        e.type, s.ToString());
  std::lock_guard<std::mutex> lk(poll_mu);
  unshared.push_back(e);
  KeepUnshared();
}

void Console::Impl::KeepUnshared() {
  counters->keys_unshared.store(unshared.size());
  Status s = SharedKeys::SaveUnshared(config.data_dir(), unshared);
  if (!s.ok())
    Logger("http")->error(
        "event=unshared_keys_unwritten error=\"{}\" effect=\"lost if the node restarts\"",
        s.ToString());
}

void Console::Impl::PollSharedKeys() {
  std::unique_lock<std::mutex> lk(poll_mu);
  while (!poll_cv.wait_for(lk, std::chrono::seconds(1), [this] { return polling_stopped; })) {
    // Each kept (in the file too) until shared; changes made meanwhile go
    // after them. One the bucket can never take (it does not read) is
    // dropped: the key's partition's log still holds it.
    const std::vector<Event> retry = unshared;
    lk.unlock();
    std::vector<bool> shared(retry.size());
    for (size_t i = 0; i < retry.size(); ++i) {
      Status ps = shared_keys->Publish(retry[i]);
      if (ps.code() == Status::Code::kInvalidArgument)
        Logger("http")->error("event=shared_key_dropped type={} error=\"{}\"", retry[i].type,
                              ps.ToString());
      shared[i] = ps.ok() || ps.code() == Status::Code::kInvalidArgument;
    }
    size_t n = 0;
    Status s = shared_keys->FoldInto(&keys, &n);
    if (!s.ok()) Logger("http")->warn("event=shared_keys_unread error=\"{}\"", s.ToString());
    counters->shared_keys_stale.store(s.ok() ? 0 : 1);
    parked.Expire(clock->NowMicros());  // a quiet node lets go of them too
    lk.lock();
    if (std::find(shared.begin(), shared.end(), true) == shared.end()) continue;
    std::vector<Event> left;
    for (size_t i = 0; i < unshared.size(); ++i)
      if (i >= retry.size() || !shared[i]) left.push_back(std::move(unshared[i]));
    unshared = std::move(left);
    KeepUnshared();
  }
}

Status Console::Start() {
  Impl& m = *impl_;
  Status s;
  {
    std::lock_guard<std::mutex> lk(m.keys_load_mu);
    s = m.keys.Load(*m.log, m.config.tenants());
    if (!s.ok()) return Status::IOError("reading the API keys: " + s.ToString());
    m.keys_loaded.insert(m.config.tenants().begin(), m.config.tenants().end());
  }
  // The page's session secret: every node's in cluster mode (set by
  // SetSessionSecret), else the data directory's.
  if (m.session_secret.empty()) s = LoadOrCreateSecret(m.config.data_dir(), kSessionSecretFile, &m.session_secret);
  if (!s.ok()) {
    // Sign-ins then last until the service stops.
    Logger("http")->warn("event=session_key_unwritten error=\"{}\" effect=\"sign-ins end at restart\"",
                         s.ToString());
    uint8_t raw[32];
    RandomBytes(raw, sizeof(raw));
    m.session_secret = HexEncode(std::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
  }
  m.worker = std::make_unique<Worker>();
  m.eraser = std::make_unique<Worker>();
  m.waits = std::make_unique<Worker>();
  m.access = std::make_unique<AccessLog>(m.config.data_dir());
  return Status::OK();
}

AccessRecord Console::Impl::AccessOf(const ApiRequest& r, const std::string& route) const {
  AccessRecord a;
  a.at_us = clock->NowMicros();
  a.client = r.client.empty() ? r.peer : r.client;
  a.method = r.method;
  a.route = route;
  a.request_id = r.request_id;
  return a;
}

void Console::Impl::RecordAccess(const AccessRecord& r) {
  if (!access) return;
  Status s = access->Record(r);
  if (!s.ok()) {
    counters->access_log_failures.fetch_add(1);
    Logger("http")->error("event=access_log_unwritten route={} error=\"{}\"", r.route, s.ToString());
  }
}

void Console::SetAdminToken(std::string token) { impl_->admin_token = std::move(token); }
void Console::SetStatusSource(StatusSource source) { impl_->status = std::move(source); }
void Console::SetReloadHandler(ReloadHandler reload) { impl_->reload = std::move(reload); }
void Console::ReloadInBackground() {
  impl_->worker->Post([impl = impl_] {
    if (!impl->reload) return;
    std::string summary;
    Status done = impl->reload(&summary, nullptr);  // the handler logs what it did
    (void)done;
  });
}
void Console::SetEraseHandler(EraseHandler erase) { impl_->erase = std::move(erase); }
void Console::SetBackfillHandler(BackfillHandler backfill) { impl_->backfill = std::move(backfill); }
void Console::SetBackupHandler(BackupHandler backup) { impl_->backup = std::move(backup); }
void Console::SetSyncControl(SyncControlHooks hooks) { impl_->sync_control = std::move(hooks); }
void Console::SetLiveConfig(const Config& config) {
  Impl& m = *impl_;
  {
    // A tenant the start did not know may have keys from an earlier run:
    // read before it is live, so that no key is made or revoked meanwhile.
    std::lock_guard<std::mutex> lk(m.keys_load_mu);
    uint64_t unread = 0;
    for (const std::string& t : config.tenants()) {
      if (m.keys_loaded.count(t)) continue;
      Status s = m.keys.Load(*m.log, {t});
      if (s.ok()) {
        m.keys_loaded.insert(t);
      } else {
        ++unread;
        Logger("http")->warn("event=api_keys_unread tenant={} error=\"{}\"", t,
                             LogText(s.ToString()));
      }
    }
    m.counters->keys_unread_tenants.store(unread);
  }
  m.live.store(&config, std::memory_order_release);
}

bool Console::Serves(std::string_view path) {
  return path == "/docs/visual" || path.rfind("/docs/visual/", 0) == 0 ||
         (path.rfind("/v1/", 0) == 0 && path != "/v1/health");
}

std::optional<Principal> Console::Impl::Authenticate(const ApiRequest& r) const {
  const std::string auth = r.Header("authorization");
  if (auth.rfind("Bearer ", 0) != 0) return std::nullopt;
  const std::string token = auth.substr(7);
  Principal p;
  // The admin token is for the tools on this machine: taken only where the
  // admin endpoints are served.
  if (r.admin_listener && !admin_token.empty() && ConstantTimeEquals(token, admin_token)) {
    p.credential = "admin-token";
    p.name = "admin token";
    p.role = ApiRole::kAdmin;
    return p;
  }
  auto key = keys.Authenticate(token);
  if (!key) return std::nullopt;
  p.credential = "key:" + key->id;
  p.key_id = key->id;
  p.name = key->name;
  p.role = key->role;
  p.tenant = key->tenant;
  return p;
}

std::optional<std::string> Console::Impl::TenantOf(const ApiRequest&, const Params& p,
                                                   const Principal& who,
                                                   const Responder& respond) const {
  std::string tenant = Param(p, "tenant");
  if (tenant.empty()) tenant = who.tenant == kAllTenants ? "default" : who.tenant;
  // A one-tenant key is refused any other name alike, known or not: it
  // does not learn which tenants exist.
  if (who.tenant != kAllTenants && who.tenant != tenant) {
    counters->rejected.fetch_add(1);
    respond(JsonError(403, "forbidden", "this key is for tenant " + who.tenant));
    return std::nullopt;
  }
  const auto& all = Live().tenants();
  if (std::find(all.begin(), all.end(), tenant) == all.end()) {
    counters->rejected.fetch_add(1);
    respond(JsonError(404, "unknown_tenant", "no tenant named " + tenant));
    return std::nullopt;
  }
  return tenant;
}

bool Console::Impl::WithinLimits(const Principal& who, const std::string& tenant,
                                 std::vector<std::pair<std::string, std::string>>* headers,
                                 const Responder& respond) {
  if (who.key_id.empty()) return true;  // the admin token: this machine's own tools
  const int64_t now = clock->NowMicros();
  const ApiSettings& a = config.api();
  RateDecision k = per_key.Peek("k:" + who.key_id, a.rate_limit_per_key, now);
  RateDecision t = per_tenant.Peek("t:" + tenant, a.rate_limit_per_tenant, now);
  if (k.allowed && t.allowed) {
    k = per_key.Take("k:" + who.key_id, a.rate_limit_per_key, now);
    t = per_tenant.Take("t:" + tenant, a.rate_limit_per_tenant, now);
  }
  const RateDecision d = Tighter(k, t);
  if (d.limit > 0) {
    headers->emplace_back("X-RateLimit-Limit", std::to_string(d.limit));
    headers->emplace_back("X-RateLimit-Remaining", std::to_string(d.remaining));
    headers->emplace_back("X-RateLimit-Reset", std::to_string(d.reset_s));
  }
  if (d.allowed) return true;
  counters->rate_limited.fetch_add(1);
  ApiResponse r = JsonError(
      429, "rate_limited",
      std::string(k.allowed ? "tenant " + tenant : "this key") + " made " +
          std::to_string(d.limit) + " requests this minute; retry in " +
          std::to_string(d.reset_s) + " s");
  r.headers = *headers;
  r.headers.emplace_back("Retry-After", std::to_string(d.reset_s));
  respond(std::move(r));
  return false;
}

void Console::Handle(ApiRequest r, Responder respond) {
  Impl& m = *impl_;
  // Every answer carries what every console answer must.
  Responder answer = [respond = std::move(respond)](ApiResponse a) {
    a.headers.emplace_back("Cache-Control", "no-store");
    a.headers.emplace_back("X-Content-Type-Options", "nosniff");
    respond(std::move(a));
  };
  const Route* route = nullptr;
  bool path_known = false;
  std::string param;
  for (const auto& candidate : kRoutes) {
    std::string p;
    if (!PathMatches(candidate.path, r.path, &p)) continue;
    path_known = true;
    if (r.method == candidate.method) {
      route = &candidate;
      param = p;
      break;
    }
  }
  const bool separate_admin = m.config.server().admin_listen_port != 0;
  const bool admin_path = r.path.rfind("/v1/admin/", 0) == 0;
  if (admin_path && separate_admin && !r.admin_listener) {
    answer(JsonError(404, "not_found", "no such endpoint on this listener"));
    return;
  }
  if (!path_known) {
    answer(JsonError(404, "not_found", admin_path ? "no such admin endpoint" : "no such endpoint"));
    return;
  }
  if (!route) {
    answer(JsonError(405, "method_not_allowed", "not with " + r.method));
    return;
  }
  const std::string rpath = route->path;
  if (rpath == "/v1/openapi.json") {
    ApiResponse a;
    a.body = OpenApiDocument();
    answer(std::move(a));
    return;
  }
  if (rpath == "/docs/visual") return m.Page(r, std::move(answer));
  if (rpath == "/docs/visual/sign-in") return m.SignIn(r, std::move(answer));
  if (rpath == "/docs/visual/sign-out") return m.SignOut(r, std::move(answer));

  // Every call from here on is the keyed or admin API's: recorded once
  // answered (storage/access_log.h), whoever asked.
  auto record = std::make_shared<AccessRecord>(m.AccessOf(r, rpath));
  answer = [&m, record, answer = std::move(answer)](ApiResponse a) {
    record->status = a.status;
    m.RecordAccess(*record);
    answer(std::move(a));
  };
  auto who = m.Admit(r, *route->role, record.get(), answer);
  if (!who) return;
  m.Dispatch(r, *who, rpath, param, record.get(), std::move(answer));
}

std::optional<Principal> Console::Impl::Admit(const ApiRequest& r, ApiRole needs,
                                              AccessRecord* record, const Responder& answer) {
  auto who = Authenticate(r);
  if (who) {
    record->credential = who->credential;
    record->key_id = who->key_id;
    record->key_name = who->name;
    record->role = std::string(ApiRoleName(who->role));
    record->tenant = who->tenant;
  } else {
    record->key_id = PresentedKeyId(r);
  }
  if (!who) {
    counters->auth_failures.fetch_add(1);
    counters->rejected.fetch_add(1);
    ApiResponse a = JsonError(401, "unauthorized",
                              "Authorization must be Bearer <an API key> (`dfm keys create`)" +
                                  std::string(r.admin_listener
                                                  ? " or <the data directory's admin.token>"
                                                  : ""));
    a.headers.emplace_back("WWW-Authenticate", "Bearer");
    answer(std::move(a));
    return std::nullopt;
  }
  if (!RoleAllows(who->role, needs)) {
    counters->rejected.fetch_add(1);
    answer(JsonError(403, "forbidden",
                     "a " + std::string(ApiRoleName(who->role)) + " key may not; this needs " +
                         std::string(ApiRoleName(needs))));
    return std::nullopt;
  }
  return who;
}

void Console::Impl::Dispatch(const ApiRequest& r, const Principal& who, const std::string& rpath,
                             const std::string& param, AccessRecord* record, Responder answer) {
  // A query that does not parse is refused whole: read as none, it would
  // drop `tenant` (a key of every tenant then acts on "default") and every
  // filter.
  const std::optional<Params> parsed = ParseForm(r.query);
  if (!parsed) {
    counters->rejected.fetch_add(1);
    return answer(JsonError(400, "bad_parameter",
                            "the query string is not well formed: a '%' must be followed by two "
                            "hex digits"));
  }
  const Params& params = *parsed;
  Headers headers;
  const std::string scope = who.tenant == kAllTenants ? std::string("*") : who.tenant;
  if (rpath.rfind("/v1/admin/keys", 0) == 0) {
    // Counted against the key and its own tenant ("*": a key of every
    // tenant), never one counter every tenant's admin calls share.
    if (!WithinLimits(who, scope, &headers, answer)) return;
    if (r.method == "GET") return ListKeys(who, std::move(headers), std::move(answer));
    if (r.method == "POST") return CreateKey(r, who, std::move(headers), std::move(answer));
    return RevokeKey(r, who, param, std::move(headers), std::move(answer));
  }
  if (rpath == "/v1/admin/reload") {
    if (!WithinLimits(who, scope, &headers, answer)) return;
    return Reload(r, who, std::move(headers), std::move(answer));
  }
  if (rpath == "/v1/admin/backup") {
    if (!WithinLimits(who, scope, &headers, answer)) return;
    return Backup(r, who, std::move(headers), std::move(answer));
  }
  if (rpath.rfind("/v1/admin/sync", 0) == 0) {
    if (!WithinLimits(who, scope, &headers, answer)) return;
    return SyncControlCall(r, who, std::move(headers), std::move(answer));
  }
  auto tenant = TenantOf(r, params, who, answer);
  if (!tenant) return;
  record->tenant = *tenant;
  if (!WithinLimits(who, *tenant, &headers, answer)) return;
  if (rpath == "/v1/admin/replay")
    return Replay(r, who, *tenant, std::move(headers), std::move(answer));
  if (rpath == "/v1/admin/settle")
    return Settle(r, who, *tenant, std::move(headers), std::move(answer));
  if (rpath == "/v1/admin/erase")
    return Erase(r, who, *tenant, std::move(headers), std::move(answer));
  if (rpath == "/v1/admin/backfill")
    return Backfill(r, who, *tenant, std::move(headers), std::move(answer));
  if (IsCampaignRoute(rpath))
    return Campaigns(r, who, *tenant, rpath, param, params, std::move(headers), std::move(answer));
  Read(rpath, params, *tenant, who.tenant == kAllTenants, std::move(headers), std::move(answer));
}

}  // namespace dfm
