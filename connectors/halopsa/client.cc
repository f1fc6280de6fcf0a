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
#include "connectors/halopsa/clients_cache.h"
#include "connectors/halopsa/halopsa.h"
#include "connectors/halopsa/paged_walk.h"
#include "sync/consent.h"
#include "sync/identity.h"
#include "util/json.h"
#include "util/strings.h"

namespace dfm {

namespace {

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

// One user's email consent (neversendemails).
struct UserConsent {
  int64_t id = 0;
  bool never = false;
};
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

class HaloClient final : public VendorClient {
 public:
  HaloClient(const SystemSettings& s, HttpClient* http)
      : http_(http),
        base_(ApiBaseUrl(s)),
        token_request_(HaloTokenRequest(s)),
        timeout_ms_(std::stoll(s.at("request_timeout_ms"))),
        create_clients_(s.at("create_clients") == "true"),
        default_client_(std::strtoll(s.at("default_client_id").c_str(), nullptr, 10)) {
    std::string problem;
    custom_ = ParseHaloCustomFields(s.at("custom_fields"), &problem).value_or(HaloCustomFields{});
  }

  bool UsesOAuth() const override { return true; }

  std::string Notice() const override { return clients_.DuplicatesText(); }

  void RefreshToken(const Credentials&, std::function<void(TokenGrant)> done) override {
    http_->Send(HttpRequest(token_request_),
                [done = std::move(done)](HttpResponse resp) { done(ReadHaloToken(resp)); });
  }

  void Push(const PushRequest& req, const Credentials& creds,
            std::function<void(PushResult)> done) override {
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
    if (!req.external_id.empty()) return Save(job, std::strtoll(req.external_id.c_str(), nullptr, 10));
    FindUser(job);
  }

  bool CanList() const override { return true; }

  // Backfill (list): the file's comment. `cursor` is "<page>:<highest id
  // read>"; empty, or a bare page number (an older build's), starts again.
  void ListContacts(const std::string& cursor, int page_size, const Credentials& creds,
                    std::function<void(ContactPage)> done) override {
    HaloWalkAt at;
    const size_t colon = cursor.find(':');
    if (colon != std::string::npos) {
      at.page = std::max<int64_t>(1, std::strtoll(cursor.c_str(), nullptr, 10));
      at.read_to = std::strtoll(cursor.c_str() + colon + 1, nullptr, 10);
    }
    HaloWalk w = Walk(
        "/api/Users?pageinate=true&includeinactive=true", "users", page_size, creds.access_token,
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

 private:
  struct Job {
    PushRequest req;
    std::string token;
    std::function<void(PushResult)> done;
    PushResult result;
    std::vector<HaloClientRecord> listed;  // a GET /api/Client walk in progress
    int64_t listed_from_us = 0;            // when that walk began
    bool looked_again = false;             // the linked user was gone: found or made anew once
  };
  using JobPtr = std::shared_ptr<Job>;

  // A walk over `list` (paged_walk.h) with `token`, its requests sent by `send`.
  HaloWalk Walk(std::string list, std::string key, int page_size, const std::string& token,
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
  static bool ReadUsersPage(const std::string& body, ContactPage* p) {
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

  HttpRequest Api(const std::string& token, const char* method, const std::string& path) const {
    HttpRequest r;
    r.method = method;
    r.url = base_ + path;
    r.timeout_ms = timeout_ms_;
    r.headers = {{"Authorization", "Bearer " + token}, {"Accept", "application/json"}};
    if (std::string_view(method) == "POST") r.headers.push_back({"Content-Type", "application/json"});
    return r;
  }

  void Send(const JobPtr& job, HttpRequest r, std::function<void(HttpResponse)> then) {
    job->result.requests++;
    http_->Send(std::move(r), std::move(then));
  }

  // True when `resp` settled the push (an error, reported).
  static bool Settle(const JobPtr& job, const HttpResponse& resp) {
    job->result.http_status = resp.status;
    ReadRateHeaders(resp, &job->result);
    if (resp.status / 100 == 2) return false;
    job->result.auth_rejected = resp.status == 401;
    job->result.detail = HaloErrorDetail(resp);
    Finish(job);
    return true;
  }

  static void Finish(const JobPtr& job) { job->done(std::move(job->result)); }

  static void Unreadable(const JobPtr& job, const std::string& what) {
    job->result.http_status = 0;  // asked again: every step looks before it writes
    job->result.detail = "HaloPSA's " + what + " answer does not read";
    Finish(job);
  }

  void FindUser(const JobPtr& job) {
    const std::string email = job->req.Field(fields::kEmail);
    const std::string phone = job->req.Field(fields::kPhone);
    if (email.empty() && phone.empty()) return ResolveClient(job);  // nothing to look up by
    std::string path = "/api/Users?includeinactive=true&pageinate=true&page_size=50&page_no=1&search=" +
                       UrlEscape(email.empty() ? phone : email);
    if (email.empty()) path += "&search_phonenumbers=true";
    Send(job, Api(job->token, "GET", path), [this, job, email, phone](HttpResponse resp) {
      if (Settle(job, resp)) return;
      const int64_t id = FindUserIn(resp.body, email, phone);
      if (id < 0) return Unreadable(job, "users search");
      if (id > 0) return Save(job, id);
      ResolveClient(job);
    });
  }

  // Consent: every user of the person (the file's comment), then each set
  // (opt_out, opt_in) or read (read_consent).
  void EveryUser(const JobPtr& job) {
    const std::string email = AsciiLower(job->req.Field(fields::kEmail));
    if (email.empty()) return OwnUser(job, {});
    const std::string path = "/api/Users?includeinactive=true&pageinate=true&page_size=50&page_no=1&search=" +
                             UrlEscape(email);
    Send(job, Api(job->token, "GET", path), [this, job, email](HttpResponse resp) {
      if (Settle(job, resp)) return;
      std::vector<UserConsent> users;
      if (!UsersWithEmail(resp.body, email, &users)) return Unreadable(job, "users search");
      OwnUser(job, std::move(users));
    });
  }

  void OwnUser(const JobPtr& job, std::vector<UserConsent> users) {
    const int64_t own = std::strtoll(job->req.external_id.c_str(), nullptr, 10);
    auto is_own = [own](const UserConsent& u) { return u.id == own; };
    const bool after = !job->req.Field("after").empty();  // read it fresh
    if (after && own > 0 && job->req.op == "read_consent")
      users.erase(std::remove_if(users.begin(), users.end(), is_own), users.end());
    const bool listed = own <= 0 || std::any_of(users.begin(), users.end(), is_own);
    if (job->req.op != "read_consent") {
      std::vector<int64_t> ids;
      if (own > 0) ids.push_back(own);
      for (const auto& u : users)
        if (u.id != own) ids.push_back(u.id);
      return SetEach(job, std::move(ids), 0, {});
    }
    if (listed) return AnswerHeld(job, users);
    Send(job, Api(job->token, "GET", "/api/Users/" + std::to_string(own)),
         [job, users, after](HttpResponse resp) mutable {
           bool read = false;
           if (!Gone(resp)) {
             if (Settle(job, resp)) return;
             simdjson::dom::parser parser;
             simdjson::dom::element u;
             UserConsent c;
             read = !parser.parse(resp.body).get(u) && ReadUserConsent(u, &c);
             if (read) users.push_back(c);
           }
           if (after && !read) users.clear();  // the others' copies may be as old
           AnswerHeld(job, users);
         });
  }

  static void AnswerHeld(const JobPtr& job, const std::vector<UserConsent>& users) {
    job->result.http_status = 200;
    bool all = !users.empty();
    for (const auto& u : users) all = all && u.never;
    if (!users.empty()) job->result.answered["held." + std::string(channels::kEmail)] = all ? "out" : "in";
    job->result.detail = "read " + std::to_string(users.size()) + " HaloPSA user" + (users.size() == 1 ? "" : "s");
    Finish(job);
  }

  // Sets neversendemails on ids[i..]; `set`: those done.
  void SetEach(const JobPtr& job, std::vector<int64_t> ids, size_t i, std::vector<int64_t> set) {
    if (i == ids.size()) {
      if (set.empty()) {
        job->result.http_status = 422;
        job->result.detail = "HaloPSA has no user with this email";
        return Finish(job);
      }
      std::string all;
      for (int64_t id : set) all += (all.empty() ? "" : ",") + std::to_string(id);
      job->result.http_status = 200;
      // The person's own user only when it is the push's own: one found by
      // the email may be another contact's (a shared mailbox); answer.ids
      // names every user set (as GoHighLevel's consent push does).
      if (std::to_string(set[0]) == job->req.external_id)
        job->result.external_id = job->req.external_id;
      job->result.answered["ids"] = all;
      job->result.detail = "set on " + std::to_string(set.size()) + " HaloPSA user" + (set.size() == 1 ? "" : "s");
      return Finish(job);
    }
    JsonObject u;
    u.Int("id", ids[i]).Bool("neversendemails", job->req.op == "opt_out");
    HttpRequest r = Api(job->token, "POST", "/api/Users");
    r.body = "[" + u.Finish() + "]";
    Send(job, std::move(r),
         [this, job, ids = std::move(ids), i, set = std::move(set)](HttpResponse resp) mutable {
           if (!Gone(resp)) {
             if (Settle(job, resp)) return;
             set.push_back(ids[i]);
           }
           SetEach(job, std::move(ids), i + 1, std::move(set));
         });
  }

  std::string CompanyDomain(const JobPtr& job) const {
    std::string d = job->req.Field(fields::kCompanyDomain);
    return d.empty() ? CompanyDomainOfEmail(job->req.Field(fields::kEmail)) : d;
  }

  void ResolveClient(const JobPtr& job) {
    const std::string company = job->req.Field(fields::kCompanyName), domain = CompanyDomain(job);
    if (company.empty() && domain.empty()) return WithDefaultClient(job);
    if (auto c = clients_.Find(company, domain)) return SiteOf(job, *c);
    if (!clients_.Fresh(NowUs())) return ListClients(job);
    MissingClient(job);
  }

  void ListClients(const JobPtr& job) {
    job->listed_from_us = NowUs();
    job->listed.clear();
    WalkClients(job, {}, [this, job](const HttpResponse* failed) {
      if (failed) {
        if (Settle(job, *failed)) return;
        return Unreadable(job, "clients list");
      }
      clients_.Replace(std::move(job->listed), NowUs(), job->listed_from_us);
      const std::string company = job->req.Field(fields::kCompanyName);
      if (auto c = clients_.Find(company, CompanyDomain(job))) return SiteOf(job, *c);
      MissingClient(job);
    });
  }

  // Every Client into job->listed, each once, through the id-ordered walk
  // (paged_walk.h), at most kMostPages pages of kPage; `done` gets null, or
  // the answer that ended the walk (a 2xx one: it did not read).
  void WalkClients(const JobPtr& job, HaloWalkAt at,
                   std::function<void(const HttpResponse*)> done) {
    constexpr int kPage = 100, kMostPages = 200;
    HaloWalk w = Walk(
        "/api/Client?pageinate=true", "clients", kPage, job->token,
        [this, job](HttpRequest r, HttpCallback cb) { Send(job, std::move(r), std::move(cb)); });
    ReadHaloPage(w, at, [this, job, done = std::move(done)](HaloPage hp) mutable {
      int64_t total = 0;
      if (!hp.ok() || !ReadHaloClients(hp.answer.body, false, &job->listed, &total))
        return done(&hp.answer);
      if (hp.next && hp.next->page <= kMostPages)
        return WalkClients(job, *hp.next, std::move(done));
      KeepOncePerId(&job->listed);  // a step back reads a page again
      done(nullptr);
    });
  }

  void MissingClient(const JobPtr& job) {
    if (!create_clients_) return WithDefaultClient(job);
    const std::string company = job->req.Field(fields::kCompanyName), domain = CompanyDomain(job);
    bool creator = false;
    auto found = clients_.FindOrJoin(
        company, domain,
        [this, job](const std::optional<HaloClientRecord>& made) {
          if (!made) return ResolveClient(job);  // that creation failed: look again
          job->result.detail = "filed under HaloPSA Client " + std::to_string(made->id) + ", created for another push";
          SiteOf(job, *made);
        },
        &creator);
    if (found) return SiteOf(job, *found);
    if (!creator) return;  // another push of this company is creating it
    ClaimClient(job, company, domain);
  }

  // The creator of a company's Client within this connector claims it in
  // the records every node and restart shares (vendor_records.h).
  void ClaimClient(const JobPtr& job, const std::string& company, const std::string& domain) {
    VendorRecords* records = job->req.records.get();
    if (!records) return PostClient(job, company, domain, {});
    std::vector<std::string> mine;
    bool taken_over = false;
    for (const std::string& key : HaloClientsCache::Keys(company, domain)) {
      const std::string record = "client " + key;
      std::string id;
      int64_t busy_us = 0;
      const VendorRecords::Claim c = records->Take(record, &id, &busy_us);
      if (c == VendorRecords::Claim::kMine || c == VendorRecords::Claim::kTakenOver) {
        mine.push_back(record);
        taken_over = taken_over || c == VendorRecords::Claim::kTakenOver;
        continue;
      }
      for (const auto& m : mine) records->Release(m);
      if (c == VendorRecords::Claim::kKnown) return KnownClient(job, company, domain, id);
      clients_.Created(company, domain, std::nullopt, NowUs());  // the waiters look again
      job->result.http_status = 503;
      job->result.transient = true;
      // A live creator settles within seconds; one quiet for longer died, and
      // its claim may be taken over once stale.
      job->result.retry_after_us =
          busy_us < 10000000 ? 1000000 : std::max<int64_t>(1000000, VendorRecords::kStaleUs - busy_us);
      job->result.detail = c == VendorRecords::Claim::kBusy
                               ? "another node is creating this company's HaloPSA Client: asked again"
                               : "the shared vendor records do not answer: asked again";
      return Finish(job);
    }
    if (!taken_over) return PostClient(job, company, domain, std::move(mine));
    // A claim its holder left: its Client may exist. Listed again first.
    clients_.Invalidate();
    ListThenPost(job, company, domain, std::move(mine));
  }

  // A Client another node or an earlier run made (the records know its id).
  void KnownClient(const JobPtr& job, const std::string& company, const std::string& domain, const std::string& id) {
    HaloClientRecord c;
    try {
      c.id = std::stoll(id);
    } catch (...) {
      c.id = 0;
    }
    if (c.id <= 0) return Unreadable(job, "recorded client");
    c.name = company;
    c.domain = domain;
    clients_.Created(company, domain, c, NowUs());
    job->result.detail = "filed under HaloPSA Client " + id + ", created earlier or by another node";
    SiteOf(job, c);
  }

  void ListThenPost(const JobPtr& job, const std::string& company, const std::string& domain,
                    std::vector<std::string> mine) {
    job->listed.clear();
    WalkClients(
        job, {},
        [this, job, company, domain, mine = std::move(mine)](const HttpResponse* failed) mutable {
          if (failed) {
            // Unknown still whether the dead holder's Client landed: the
            // claims stay, so that whoever takes them over lists first.
            EndCreation(job, company, domain, mine, std::nullopt, /*maybe_made=*/true);
            if (Settle(job, *failed)) return;
            return Unreadable(job, "clients list");
          }
          HaloClientsCache listed;
          listed.Replace(std::move(job->listed), NowUs(), NowUs());
          if (auto c = listed.Find(company, domain)) {
            EndCreation(job, company, domain, mine, c);
            job->result.detail = "filed under HaloPSA Client " + std::to_string(c->id) +
                                 ", found after a stale claim";
            return SiteOf(job, *c);
          }
          PostClient(job, company, domain, std::move(mine));
        });
  }

  // Every waiter learns how the creation ended; the records keep its id
  // (or let the next creator try).
  // `maybe_made`: the creation got no answer and may have landed: its
  // claims are kept until stale, so that whoever creates next lists first.
  void EndCreation(const JobPtr& job, const std::string& company, const std::string& domain,
                   const std::vector<std::string>& mine, const std::optional<HaloClientRecord>& made,
                   bool maybe_made = false) {
    if (VendorRecords* records = job->req.records.get()) {
      for (const auto& m : mine) {
        if (!made) {
          if (!maybe_made) records->Release(m);
        } else if (Status s = records->Settle(m, std::to_string(made->id)); !s.ok()) {
          records->Release(m);  // unknown to the others: they list HaloPSA, which has it
        }
      }
    }
    clients_.Created(company, domain, made, NowUs());
  }

  void PostClient(const JobPtr& job, const std::string& company, const std::string& domain,
                  std::vector<std::string> mine) {
    JsonObject c;
    c.Str("name", company.empty() ? domain : company);
    if (!domain.empty()) c.Str("domain", domain).Str("website", "https://" + domain);
    HttpRequest r = Api(job->token, "POST", "/api/Client");
    r.body = "[" + c.Finish() + "]";
    Send(job, std::move(r), [this, job, company, domain, mine = std::move(mine)](HttpResponse resp) {
      const bool maybe = (resp.status == 0 && !resp.not_sent) || resp.status / 100 == 5;
      if (maybe) clients_.Invalidate();  // it may exist: list again
      std::vector<HaloClientRecord> saved;
      const bool made = resp.status / 100 == 2 && ReadHaloClients(resp.body, true, &saved, nullptr);
      EndCreation(job, company, domain, mine, made ? std::optional<HaloClientRecord>(saved[0]) : std::nullopt,
                  maybe || (resp.status / 100 == 2 && !made));
      if (Settle(job, resp)) return;
      if (!made) return Unreadable(job, "client create");
      job->result.detail = "created HaloPSA Client " + std::to_string(saved[0].id);
      SiteOf(job, saved[0]);
    });
  }

  void WithDefaultClient(const JobPtr& job) {
    if (default_client_ <= 0) {
      job->result.http_status = 422;
      job->result.detail =
          "no HaloPSA client for this contact (no company, or none matches and create_clients is off); "
          "set halopsa.default_client_id";
      return Finish(job);
    }
    Send(job, Api(job->token, "GET", "/api/Client/" + std::to_string(default_client_)),
         [this, job](HttpResponse resp) {
           if (Settle(job, resp)) return;
           std::vector<HaloClientRecord> one;
           if (!ReadHaloClients(resp.body, true, &one, nullptr)) return Unreadable(job, "client");
           SiteOf(job, one[0]);
         });
  }

  void SiteOf(const JobPtr& job, const HaloClientRecord& c) {
    if (c.main_site_id > 0) return Create(job, c.id, c.main_site_id);
    const int64_t client = c.id;
    Send(job, Api(job->token, "GET", "/api/Site?client_id=" + std::to_string(client)),
         [this, job, client](HttpResponse resp) {
           if (Settle(job, resp)) return;
           simdjson::dom::parser parser;
           simdjson::dom::element doc;
           simdjson::dom::array sites;
           if (parser.parse(resp.body).get(doc) || doc["sites"].get(sites)) return Unreadable(job, "sites");
           for (simdjson::dom::element s : sites) {
             bool inactive = false;
             int64_t id = 0;
             double d = 0;
             if (s["id"].get(id) && !s["id"].get(d)) id = static_cast<int64_t>(d);
             if (!s["inactive"].get(inactive) && inactive) continue;
             if (id > 0) return Create(job, client, id);
           }
           job->result.http_status = 422;
           job->result.detail = "HaloPSA client " + std::to_string(client) + " has no active site";
           Finish(job);
         });
  }

  // The user's fields as HaloPSA names them, from the push.
  void UserFields(const PushRequest& req, JsonObject* u) const {
    const std::string first = req.Field(fields::kFirstName), last = req.Field(fields::kLastName);
    if (req.fields.count(fields::kFirstName) || req.fields.count(fields::kLastName)) {
      if (req.fields.count(fields::kFirstName)) u->Str("firstname", first);
      if (req.fields.count(fields::kLastName)) u->Str("surname", last);
      const std::string full = first + " " + last;
      const std::string_view name = TrimSpace(full);
      if (!name.empty()) u->Str("name", name);
    }
    for (const auto& [ours, theirs] : {std::pair{fields::kEmail, "emailaddress"},
                                       std::pair{fields::kPhone, "phonenumber"},
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

  void Create(const JobPtr& job, int64_t client, int64_t site) {
    JsonObject u;
    UserFields(job->req, &u);
    u.Int("client_id", client).Int("site_id", site);
    Post(job, u.Finish());
  }

  // A user deleted in HaloPSA: 404, or 400 "User N does not exist."
  static bool Gone(const HttpResponse& resp) {
    return resp.status == 404 ||
           (resp.status == 400 && resp.body.find("does not exist") != std::string::npos);
  }

  // Saves user `id`; one deleted in HaloPSA since it was linked is looked
  // for again (by email or phone) and made when none is found, once: the
  // link would otherwise refuse every later push of the person for good.
  void Save(const JobPtr& job, int64_t id) {
    JsonObject u;
    u.Int("id", id);
    UserFields(job->req, &u);
    Post(job, u.Finish(), !job->looked_again);
  }

  void Post(const JobPtr& job, std::string user, bool look_again_if_gone = false) {
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

  HttpClient* http_;
  std::string base_;
  HttpRequest token_request_;
  int64_t timeout_ms_;
  bool create_clients_;
  int64_t default_client_;
  HaloCustomFields custom_;
  HaloClientsCache clients_;
};

}  // namespace

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
  return std::make_unique<HaloClient>(s, http);
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
