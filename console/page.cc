// The status page's handlers (console/console.h, docs/status-page.md).

#include <algorithm>
#include <limits>
#include <memory>
#include <mutex>
#include <set>

#include "connectors/common/webhook_source.h"
#include "connectors/connector.h"
#include "console/cluster_status.h"
#include "console/console_internal.h"
#include "console/contact_story.h"
#include "console/remote_read.h"
#include "console/session.h"
#include "console/status_page.h"
#include "replay-tools/tool_log.h"
#include "sync/contact_model.h"
#include "util/crypto.h"
#include "util/logging.h"
#include "util/strings.h"

namespace dfm {

namespace {

// The page is served at /docs/visual; its forms and redirects name it
// relatively, so it also works under a proxy's path prefix.
constexpr char kPageRelative[] = "visual";

ApiResponse Html(std::string body, const std::string& nonce) {
  ApiResponse a;
  a.content_type = "text/html; charset=utf-8";
  a.body = std::move(body);
  a.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-" +
                             nonce + "'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  a.headers.emplace_back("Referrer-Policy", "no-referrer");
  a.headers.emplace_back("X-Frame-Options", "DENY");
  return a;
}

ApiResponse SeeOther(const std::string& location) {
  ApiResponse a;
  a.status = 303;
  a.content_type = "text/plain; charset=utf-8";
  a.body = "see " + location;
  a.headers.emplace_back("Location", location);
  return a;
}

std::string Nonce() {
  uint8_t raw[16];
  RandomBytes(raw, sizeof(raw));
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
}

// The page's words for a search that ended with `s` and found m->stories.
void SayWhatTheSearchFound(const Status& s, PageModel* m) {
  if (s.IsInvalidArgument()) {
    m->search_problem = "Search for a phone number (any spelling), an email, or a system's id "
                        "such as ghl:abc123. " +
                        s.message();
  } else if (!s.ok()) {
    m->search_problem = "The log could not be read: " + s.ToString() + ". Contact IT.";
  } else if (m->stories.empty()) {
    m->search_problem = "No contact matches that. The systems may not have sent it to the "
                        "service yet, or it is spelled differently there.";
  }
}

// Cluster mode: each tenant's partition node tells its stories
// (kStoryRoute); the page is answered once every one did or could not. A
// tenant whose node did not answer is said, beside what the others found.
void SearchCluster(Console::Impl& im, PageModel m, StoryOptions o, Responder respond) {
  ContactRef ref;
  Status valid = ParseContactRef(m.query, im.normalizer, &ref);
  m.searched = true;
  if (!valid.ok() || o.tenants.empty()) {
    SayWhatTheSearchFound(valid, &m);
    respond(Html(RenderStatusPage(m), m.nonce));
    return;
  }
  struct Gather {
    std::mutex mu;
    size_t left = 0;
    std::vector<std::vector<ContactStory>> found;  // by tenant, in the order searched
    std::string unanswered;  // the last reason a tenant's node gave none
    PageModel m;
    Responder respond;
  };
  auto g = std::make_shared<Gather>();
  g->left = o.tenants.size();
  g->found.resize(o.tenants.size());
  g->m = std::move(m);
  g->respond = std::move(respond);
  for (size_t i = 0; i < o.tenants.size(); ++i) {
    RemoteRead rr{kStoryRoute, o.tenants[i], {{"q", g->m.query}, {"reveal", o.reveal ? "true" : "false"}}};
    im.remote_reads(o.tenants[i], EncodeRemoteRead(rr), [g, i](Status s, std::string answer) {
      ApiResponse a;
      std::lock_guard<std::mutex> lk(g->mu);
      if (s.ok() && (!DecodeReadAnswer(answer, &a) || a.status != 200 || !DecodeStories(a.body, &g->found[i])))
        s = Status::Unavailable("answered " + std::to_string(a.status));
      if (!s.ok()) g->unanswered = s.message();
      if (--g->left > 0) return;
      for (auto& f : g->found)
        for (auto& story : f) g->m.stories.push_back(std::move(story));
      SayWhatTheSearchFound(Status::OK(), &g->m);
      if (!g->unanswered.empty())
        g->m.search_problem = "Part of the cluster did not answer (" + g->unanswered +
                              "), so contacts of some tenants may be missing here: search again in "
                              "a few seconds.";
      g->respond(Html(RenderStatusPage(g->m), g->m.nonce));
    });
  }
}

std::set<std::string> TargetsOf(const Config& config, const std::string& tenant) {
  std::set<std::string> out;
  for (const auto& [system, accepted] : SyncContextFor(config, tenant).targets) out.insert(system);
  return out;
}

std::string CookieAttributes(const ApiRequest& r) {
  return std::string("; Path=/; HttpOnly; SameSite=Strict") + (r.https ? "; Secure" : "");
}

}  // namespace

std::optional<ApiKeyRecord> Console::Impl::SessionKey(const ApiRequest& r) const {
  const std::string value = CookieValue(r.Header("cookie"), kSessionCookie);
  if (value.empty()) return std::nullopt;
  auto id = CheckSession(session_secret, value, clock->NowMicros() / 1000000);
  if (!id) return std::nullopt;
  auto key = keys.Find(*id);
  if (!key || key->revoked) return std::nullopt;  // revoking a key ends its sessions
  return key;
}

StatusView Console::Impl::View(const std::string& tenant, const Config& now, bool anonymous) const {
  const bool all = tenant == kAllTenants;
  std::vector<ConnectorSnapshot> connectors;
  EngineSnapshot engine;
  if (status) status(tenant, &connectors, &engine);
  // The node's own log; a cluster's partitions said theirs (`status`).
  Status h = log->Health();
  if (!h.ok() || engine.log_state.empty()) SetLogState(h, &engine);
  // Consent conflicts: the opt-out registry keeps them (c/<tenant>/<seq>).
  std::vector<AttentionItem> attention;
  uint64_t total = 0;
  if (attention_source) {
    attention_source(tenant, &attention,
                     &total);  // a cluster's partitions said their campaigns too
  } else {
    const std::vector<std::string> tenants = all ? now.tenants() : std::vector<std::string>{tenant};
    CollectAttention(*log, tenants, &attention, &total, nullptr,
                     std::numeric_limits<size_t>::max());  // the page keeps the newest 20
    CollectCampaigns(*log, tenants, &engine.campaigns);
  }
  KeepNewest(&attention);
  if (!all) {
    // A tenant's key: its own systems and campaigns, counted alone.
    auto others = [&](const auto& x) { return x.tenant != tenant; };
    connectors.erase(std::remove_if(connectors.begin(), connectors.end(), others),
                     connectors.end());
    auto& campaigns = engine.campaigns;
    campaigns.erase(std::remove_if(campaigns.begin(), campaigns.end(), others), campaigns.end());
  }
  if (anonymous) {
    for (auto& c : connectors)
      if (!c.notice.empty()) c.notice = "Sign in to read what its client says of its records.";
    for (auto& c : engine.campaigns) c.name.clear();  // free text: shown once signed in
    const std::vector<std::string>& known = now.tenants();
    for (auto& a : attention)
      a.hidden = known.size() > 1 || std::find(known.begin(), known.end(), a.tenant) == known.end();
  }
  return BuildStatusView(connectors, engine, std::move(attention), total, clock->NowMicros());
}

void Console::Impl::Page(const ApiRequest& r, Responder respond) {
  PageModel m;
  m.path = kPageRelative;
  m.nonce = Nonce();
  auto key = SessionKey(r);
  Principal who;
  if (key) {
    m.signed_in = true;
    m.key_name = key->name;
    m.key_role = std::string(ApiRoleName(key->role));
    who.key_id = key->id;
    who.tenant = key->tenant;
  }
  const Params params = ParseForm(r.query).value_or(Params{});
  const std::string signin = Param(params, "signin");
  if (signin == "failed") m.notice = "That key is not valid (or was revoked). Nothing was signed in.";
  if (signin == "ok") m.notice = "Signed in: phones, emails and names are shown.";
  if (signin == "out") m.notice = "Signed out.";
  // Read once: a reload may add a tenant meanwhile.
  const Config& now = Live();
  // Nobody signed in may be anyone of any tenant: where several share the
  // service, what names a person (a search, a contact's id) needs a key.
  const bool shared = now.tenants().size() > 1;
  m.search_allowed = m.signed_in || (config.api().anonymous_search && !shared);
  if (!m.search_allowed && shared)
    m.search_refusal =
        "Sign in with a viewer key to search for a contact: several tenants share this service.";
  // A tenant's key sees its own systems, and the summary counts them alone.
  m.view = View(key ? key->tenant : std::string(kAllTenants), now, !key);
  // A search comes as a POST (the phone or email stays out of URLs and
  // the proxy's access log), answered on the worker.
  if (r.method != "POST") {
    respond(Html(RenderStatusPage(m), m.nonce));
    return;
  }
  const Params form = ParseForm(r.body).value_or(Params{});
  m.query = std::string(TrimSpace(Param(form, "q")));
  m.refresh_s = 0;
  if (!m.search_allowed || m.query.empty()) {
    respond(Html(RenderStatusPage(m), m.nonce));
    return;
  }
  if (key) {
    Impl::Headers headers;
    Principal p = who;
    p.credential = "key:" + key->id;
    bool over = false;
    if (!WithinLimits(p, key->tenant == kAllTenants ? "*" : key->tenant, &headers,
                      [&over](ApiResponse) { over = true; })) {
      m.searched = true;
      m.search_problem = "Too many searches this minute with this key; try again in a minute.";
      ApiResponse a = Html(RenderStatusPage(m), m.nonce);
      a.status = 429;
      respond(std::move(a));
      return;
    }
  }
  StoryOptions o;
  o.tenants =
      key && who.tenant != kAllTenants ? std::vector<std::string>{who.tenant} : now.tenants();
  o.reveal = m.signed_in;
  o.now_us = m.view.now_us;
  for (const auto& t : o.tenants) o.targets[t] = TargetsOf(now, t);
  if (remote_reads) return SearchCluster(*this, std::move(m), std::move(o), std::move(respond));
  worker->Post([this, m = std::move(m), o = std::move(o), respond = std::move(respond)]() mutable {
    m.searched = true;
    Status s = BuildContactStories(*log, m.query, normalizer, o, &m.stories);
    SayWhatTheSearchFound(s, &m);
    respond(Html(RenderStatusPage(m), m.nonce));
  });
}

void Console::Impl::SignIn(const ApiRequest& r, Responder respond) {
  const Params form = ParseForm(r.body).value_or(Params{});
  const std::string token(TrimSpace(Param(form, "key")));
  auto key = keys.Authenticate(token);
  // A sign-in uses a key: in the access log like the API's calls.
  AccessRecord record = AccessOf(r, "/docs/visual/sign-in");
  record.status = 303;
  if (!key) {
    counters->auth_failures.fetch_add(1);
    std::string secret;
    SplitApiKey(token, &record.key_id, &secret);  // the id a refused token names, if any
    RecordAccess(record);
    respond(SeeOther(std::string("../") + kPageRelative + "?signin=failed"));
    return;
  }
  record.credential = "key:" + key->id;
  record.key_id = key->id;
  record.key_name = key->name;
  record.role = std::string(ApiRoleName(key->role));
  record.tenant = key->tenant;
  RecordAccess(record);
  const int64_t expires =
      clock->NowMicros() / 1000000 + static_cast<int64_t>(config.api().session_hours) * 3600;
  ApiResponse a = SeeOther(std::string("../") + kPageRelative + "?signin=ok");
  a.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=" +
                                           MakeSession(session_secret, key->id, expires) +
                                           "; Max-Age=" +
                                           std::to_string(config.api().session_hours * 3600) +
                                           CookieAttributes(r));
  Logger("http")->info("request_id={} event=signed_in key={}", r.request_id, key->id);
  respond(std::move(a));
}

void Console::Impl::SignOut(const ApiRequest& r, Responder respond) {
  ApiResponse a = SeeOther(std::string("../") + kPageRelative + "?signin=out");
  a.headers.emplace_back("Set-Cookie",
                         std::string(kSessionCookie) + "=; Max-Age=0" + CookieAttributes(r));
  respond(std::move(a));
}

}  // namespace dfm
