// HaloPSA outbound client (docs/vendors/halopsa.md, "What DF-Middleware
// uses"). Every API request carries Authorization: Bearer <token> from an
// OAuth2 client credentials grant (RefreshToken; the connector actor asks
// for one before the first push, before it expires and after a 401).
//
// upsert: the user is the contact's known HaloPSA id, else the one
//         GET /api/Users?search=<email> (or <phone> with
//         search_phonenumbers) finds with that exact email or phone: a
//         create that timed out and is retried finds its user instead of
//         making a second. Found: POST /api/Users [{id, ...changed}].
//         Not found: its Client is the one named like the contact's
//         company, else the one whose domain (or website) is the email's
//         company domain (GET /api/Client pages walked in id order as the
//         backfill walks users, kept for 10 minutes; among duplicates the
//         lowest id); none: created (POST /api/Client
//         [{name, domain, website}]) when `create_clients`, else
//         `default_client_id`. A creation is single-flight per company
//         (name or domain): concurrent pushes of one new company wait for
//         the one POST and are filed under its Client; a list walked while
//         it ran keeps it; one left unanswered makes the next miss list
//         again (it may exist). The user goes to the Client's main site
//         (main_site_id, else its first site) with POST /api/Users [{...}]
//         -> 201 the saved user.
// opt_out / opt_in (channel email): neversendemails on every user of the
//         person: its own id and each GET /api/Users?search=<email> finds
//         with that exact email (staff may have made two), each with a POST
//         /api/Users [{id, neversendemails}] carrying nothing else; a user
//         gone ("does not exist") is skipped. answer.ids names them.
// read_consent: the same users' neversendemails (its own by GET
//         /api/Users/{id} when the search did not list it, and always
//         after a consent push of ours, field "after": the read sees what
//         the push wrote, whatever the search shows; its own gone or
//         unread then, nothing): held.email = "out" when every one has
//         it, else "in"; nothing when none.
// Custom fields (`custom_fields`): customfields [{name, value}].
// list (backfill): GET /api/Users?pageinate=true&includeinactive=true&order=id
//         &orderdesc=false&page_size=&page_no=, users in id order. Paging
//         is by offset: a user deleted below the page moves the rest one
//         place back, and the one at the page's edge would be skipped. So a
//         page beginning above the highest id read is followed by a read of
//         the user just before it (page_size=1, page_no=its position); when
//         that one is above the highest id read too, the page before is
//         read again (users read twice are imported once: the runner's keys).
//         paged_walk.h.
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "connectors/common/json_body.h"
#include "connectors/common/outbound.h"
#include "connectors/common/vendor_records.h"
#include "connectors/halopsa/client_impl.h"
#include "connectors/halopsa/clients_cache.h"
#include "connectors/halopsa/halopsa.h"
#include "connectors/halopsa/paged_walk.h"
#include "sync/consent.h"
#include "sync/identity.h"
#include "util/json.h"
#include "util/strings.h"

namespace dfm {
namespace halo {

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Digits(std::string_view s) {
  std::string d;
  for (char c : s)
    if (c >= '0' && c <= '9') d += c;
  return d;
}

// The id of the user in a GET /api/Users answer whose email (or phone)
// is `email` (`phone`): 0 when none; -1 when the answer does not read.
int64_t FindUserIn(std::string_view body, const std::string& email, const std::string& phone) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array users;
  if (parser.parse(body.data(), body.size()).get(doc) || doc["users"].get(users)) return -1;
  for (simdjson::dom::element u : users) {
    int64_t id = 0;
    if (u["id"].get(id) || id <= 0) continue;
    std::string_view v;
    if (!email.empty()) {
      if (!u["emailaddress"].get(v) && AsciiLower(TrimSpace(v)) == email) return id;
      continue;
    }
    for (const char* key : {"phonenumber", "mobilenumber"})
      if (!u[key].get(v) && !v.empty() && Digits(v) == Digits(phone)) return id;
  }
  return 0;
}

bool ReadUserConsent(simdjson::dom::element u, UserConsent* out) {
  int64_t id = 0;
  if (u["id"].get(id) || id <= 0) return false;
  bool never = false;
  out->id = id;
  out->never = !u["neversendemails"].get(never) && never;
  return true;
}
// Every user in a GET /api/Users answer whose email is `email`; false when
// the answer does not read.
bool UsersWithEmail(std::string_view body, const std::string& email, std::vector<UserConsent>* out) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array users;
  if (parser.parse(body.data(), body.size()).get(doc) || doc["users"].get(users)) return false;
  for (simdjson::dom::element u : users) {
    std::string_view v;
    UserConsent c;
    if (!u["emailaddress"].get(v) && AsciiLower(TrimSpace(v)) == email && ReadUserConsent(u, &c))
      out->push_back(c);
  }
  return true;
}

void HaloClient::RefreshToken(const Credentials&, std::function<void(TokenGrant)> done) {
  http_->Send(HttpRequest(token_request_),
              [done = std::move(done)](HttpResponse resp) { done(ReadHaloToken(resp)); });
}

void HaloClient::Push(const PushRequest& req, const Credentials& creds,
                      std::function<void(PushResult)> done) {
  auto job = std::make_shared<Job>();
  job->req = req;
  job->token = creds.access_token;
  job->done = std::move(done);
  const bool read = req.op == "read_consent";
  const bool consent = req.op == "opt_out" || req.op == "opt_in" || read;
  if (req.op != "upsert" && !consent) {
    job->result.http_status = 422;
    job->result.detail = "HaloPSA has no push op \"" + req.op + "\"";
    return Finish(job);
  }
  if (consent && req.channel.find(channels::kEmail) == std::string::npos) {
    job->result.http_status = 422;
    job->result.detail = "HaloPSA keeps only email consent (neversendemails)";
    return Finish(job);
  }
  if (consent) return EveryUser(job);
  if (!req.external_id.empty())
    return Save(job, std::strtoll(req.external_id.c_str(), nullptr, 10));
  FindUser(job);
}

// Backfill (list): client.cc's comment. `cursor` is "<page>:<highest id
// read>"; empty, or a bare page number (an older build's), starts again.
void HaloClient::ListContacts(const std::string& cursor, int page_size, const Credentials& creds,
                              std::function<void(ContactPage)> done) {
  HaloWalkAt at;
  const size_t colon = cursor.find(':');
  if (colon != std::string::npos) {
    at.page = std::max<int64_t>(1, std::strtoll(cursor.c_str(), nullptr, 10));
    at.read_to = std::strtoll(cursor.c_str() + colon + 1, nullptr, 10);
  }
  HaloWalk w =
      Walk("/api/Users?pageinate=true&includeinactive=true", "users", page_size, creds.access_token,
           [this](HttpRequest r, HttpCallback cb) { http_->Send(std::move(r), std::move(cb)); });
  ReadHaloPage(w, at, [page_size, done = std::move(done)](HaloPage hp) {
    ContactPage p = PageFromResponse(hp.answer, hp.path, HaloErrorDetail(hp.answer));
    p.auth_rejected = hp.answer.status == 401;
    p.requests = hp.requests;
    if (hp.answer.status / 100 != 2) return done(std::move(p));
    if (hp.capped) {  // shown on the first page; refused, not retried
      p.http_status = 400;
      p.detail = "HaloPSA answered " + std::to_string(hp.rows) + " users for page_size " +
                 std::to_string(page_size) + " with more to come: use a smaller page size";
      return done(std::move(p));
    }
    if (hp.unreadable || !ReadUsersPage(hp.answer.body, &p)) {
      p.http_status = 0;
      p.detail = "HaloPSA's users page does not read";
      return done(std::move(p));
    }
    p.next_cursor =
        hp.next ? std::to_string(hp.next->page) + ":" + std::to_string(hp.next->read_to) : "";
    done(std::move(p));
  });
}

// A walk over `list` (paged_walk.h) with `token`, its requests sent by `send`.
HaloWalk HaloClient::Walk(std::string list, std::string key, int page_size,
                          const std::string& token,
                          std::function<void(HttpRequest, HttpCallback)> send) const {
  HaloWalk w;
  w.list = std::move(list);
  w.key = std::move(key);
  w.page_size = page_size;
  w.request = [this, token](const std::string& path) { return Api(token, "GET", path); };
  w.send = std::move(send);
  return w;
}

// A users page's rows into `p` (the contacts, record_count); false when
// it does not read.
bool HaloClient::ReadUsersPage(const std::string& body, ContactPage* p) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array users;
  if (parser.parse(body).get(doc) || doc["users"].get(users)) return false;
  for (simdjson::dom::element u : users) {
    int64_t id = 0;
    if (u["id"].get(id) || id <= 0) continue;
    p->contacts.push_back({std::to_string(id), "", simdjson::minify(u)});
  }
  int64_t total = 0;
  if (!doc["record_count"].get(total)) p->total = total;
  return true;
}

HttpRequest HaloClient::Api(const std::string& token, const char* method,
                            const std::string& path) const {
  HttpRequest r;
  r.method = method;
  r.url = base_ + path;
  r.timeout_ms = timeout_ms_;
  r.headers = {{"Authorization", "Bearer " + token}, {"Accept", "application/json"}};
  if (std::string_view(method) == "POST") r.headers.push_back({"Content-Type", "application/json"});
  return r;
}

void HaloClient::Send(const JobPtr& job, HttpRequest r, std::function<void(HttpResponse)> then) {
  job->result.requests++;
  http_->Send(std::move(r), std::move(then));
}

// True when `resp` settled the push (an error, reported).
bool HaloClient::Settle(const JobPtr& job, const HttpResponse& resp) {
  job->result.http_status = resp.status;
  ReadRateHeaders(resp, &job->result);
  if (resp.status / 100 == 2) return false;
  job->result.auth_rejected = resp.status == 401;
  job->result.detail = HaloErrorDetail(resp);
  Finish(job);
  return true;
}

void HaloClient::Unreadable(const JobPtr& job, const std::string& what) {
  job->result.http_status = 0;  // asked again: every step looks before it writes
  job->result.detail = "HaloPSA's " + what + " answer does not read";
  Finish(job);
}

// The user's fields as HaloPSA names them, from the push.
void HaloClient::UserFields(const PushRequest& req, JsonObject* u) const {
  const std::string first = req.Field(fields::kFirstName), last = req.Field(fields::kLastName);
  if (req.fields.count(fields::kFirstName) || req.fields.count(fields::kLastName)) {
    if (req.fields.count(fields::kFirstName)) u->Str("firstname", first);
    if (req.fields.count(fields::kLastName)) u->Str("surname", last);
    const std::string full = first + " " + last;
    const std::string_view name = TrimSpace(full);
    if (!name.empty()) u->Str("name", name);
  }
  for (const auto& [ours, theirs] :
       {std::pair{fields::kEmail, "emailaddress"}, std::pair{fields::kPhone, "phonenumber"},
        std::pair{fields::kTitle, "title"}}) {
    auto it = req.fields.find(ours);
    if (it != req.fields.end()) u->Str(theirs, it->second);
  }
  JsonArray cfs;
  bool any = false;
  for (const auto& [ours, theirs] : custom_) {
    auto it = req.fields.find(ours);
    if (it == req.fields.end()) continue;
    cfs.Raw(JsonObject().Str("name", theirs).Str("value", it->second).Finish());
    any = true;
  }
  if (any) u->Raw("customfields", cfs.Finish());
}

void HaloClient::Create(const JobPtr& job, int64_t client, int64_t site) {
  JsonObject u;
  UserFields(job->req, &u);
  u.Int("client_id", client).Int("site_id", site);
  Post(job, u.Finish());
}

// A user deleted in HaloPSA: 404, or 400 "User N does not exist."
bool HaloClient::Gone(const HttpResponse& resp) {
  return resp.status == 404 ||
         (resp.status == 400 && resp.body.find("does not exist") != std::string::npos);
}

// Saves user `id`; one deleted in HaloPSA since it was linked is looked
// for again (by email or phone) and made when none is found, once: the
// link would otherwise refuse every later push of the person for good.
void HaloClient::Save(const JobPtr& job, int64_t id) {
  JsonObject u;
  u.Int("id", id);
  UserFields(job->req, &u);
  Post(job, u.Finish(), !job->looked_again);
}

void HaloClient::Post(const JobPtr& job, std::string user, bool look_again_if_gone) {
  HttpRequest r = Api(job->token, "POST", "/api/Users");
  r.body = "[" + user + "]";  // HaloPSA takes arrays
  Send(job, std::move(r), [this, job, look_again_if_gone](HttpResponse resp) {
    if (look_again_if_gone && Gone(resp)) {
      job->looked_again = true;
      return FindUser(job);
    }
    if (Settle(job, resp)) return;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    int64_t id = 0;
    if (parser.parse(resp.body).get(doc) || doc["id"].get(id) || id <= 0)
      return Unreadable(job, "user save");
    job->result.external_id = std::to_string(id);
    Finish(job);
  });
}

}  // namespace halo

std::vector<SettingSpec> HaloApiSettings() {
  std::vector<SettingSpec> settings = {
      {"api_base_url", false, "", "HaloPSA URL (https://<tenant>.halopsa.com); empty: no pushes"},
      {"auth_url", false, "", "its authorisation server; empty: <api_base_url>/auth"},
      {"tenant", false, "", "hosted instances: the tenant sent as ?tenant= with the token request"},
      {"client_id", false, "", "API application's client ID (client credentials)"},
      {"client_secret", true, "", "API application's client secret"},
      {"scope", false, "all", "scopes asked for (read:customers edit:customers at least)"},
      {"create_clients", false, "true",
       "true: a new user's company is created as a Client when none matches; false: default_client_id"},
      {"default_client_id", false, "0",
       "the Client a user goes to when none matches (and create_clients is off) or it has no company; "
       "0: none, the push fails",
       true},
      {"custom_fields", false, "",
       "our field=HaloPSA custom field, comma-separated (linkedin_url=CFLinkedIn, industry=CFIndustry); "
       "`dfm diagnose` checks each exists with a fitting type"},
  };
  AddDeliverySettings(&settings, {"450", "300000", "0", "450 a rolling 5 minutes (HaloPSA publishes none)"});
  return settings;
}

std::unique_ptr<VendorClient> NewHaloClient(const SystemSettings& s, HttpClient* http) {
  return std::make_unique<halo::HaloClient>(s, http);
}

Credentials HaloCredentials(const SystemSettings& s) {
  const HttpRequest token =
      HaloTokenRequest(s);  // its URL and body: where, client id, secret, scope
  return ClientCredentials({token.url, token.body});
}

HttpRequest HaloTokenRequest(const SystemSettings& s) {
  HttpRequest r;
  r.method = "POST";
  std::string auth = s.at("auth_url");
  while (!auth.empty() && auth.back() == '/') auth.pop_back();
  r.url = (auth.empty() ? ApiBaseUrl(s) + "/auth" : auth) + "/token";
  if (!s.at("tenant").empty()) r.url += "?tenant=" + UrlEscape(s.at("tenant"));
  r.timeout_ms = std::stoll(s.at("request_timeout_ms"));
  r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
  r.body = FormEncode({{"grant_type", "client_credentials"},
                       {"client_id", s.at("client_id")},
                       {"client_secret", s.at("client_secret")},
                       {"scope", s.at("scope")}});
  return r;
}

TokenGrant ReadHaloToken(const HttpResponse& resp) {
  TokenGrant g;
  g.http_status = resp.status;
  if (resp.status / 100 != 2) {
    g.detail = HaloErrorDetail(resp);
    return g;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view at;
  if (parser.parse(resp.body).get(doc) || doc["access_token"].get(at) || at.empty()) {
    g.detail = "token answer without access_token";
    return g;
  }
  g.ok = true;
  g.access_token = std::string(at);
  int64_t exp = 0;
  g.expires_in_s = doc["expires_in"].get(exp) || exp <= 0 ? 3600 : exp;  // 3600: what every answer seen says
  std::string_view rt;
  if (!doc["refresh_token"].get(rt)) g.refresh_token = std::string(rt);
  return g;
}

std::string HaloErrorDetail(const HttpResponse& r) {
  if (r.status == 0) return r.error;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (!parser.parse(r.body).get(doc)) {
    std::string_view text;
    for (const char* key : {"Message", "errorMessage", "error_description", "error", "message"})
      if (!doc[key].get(text)) return SafeDetail(r.status, text);
    return SafeDetail(r.status, "");
  }
  return SafeDetail(r.status, std::string_view(r.body).substr(0, 160));  // a plain string
}

}  // namespace dfm
