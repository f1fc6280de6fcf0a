// Apollo outbound client (docs/vendors/apollo.md, "What DF-Middleware
// uses"). Every request carries x-api-key; nothing else authenticates.
//
// enrich: POST /people/match?email=&first_name=&last_name=&organization_name=
//         &domain=&reveal_personal_emails=false&reveal_phone_number=false
//         (query string, empty body), when the contact has an email, or a
//         name with a company or domain. Then, when the answer named no
//         company and the contact's domain is known:
//         GET /organizations/enrich?domain=<domain>, remembered for a day.
// Credits (PushResult::credits): 1 for a person matched, 1 for an
// organization found by a request; nothing for no match or a remembered
// organization. MaxCredits: 1, 2 with a domain (reserved before it goes
// under the tenant's daily budget, actors/connector_actor.h); with only
// one credit left (PushRequest::max_credits), a matched person's
// organization is not asked for. A person found and an organization request that then
// fails still succeeds with what the person's answer said: asking again
// would pay for the person twice.
// Errors: 401 (plain text) refuses the key; 422 "Insufficient credits"
// and 403 (the key's scope or plan) fail for good; 429 waits Retry-After;
// 5xx and transport errors are retried by the connector actor.
#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "connectors/apollo/apollo.h"
#include "connectors/common/outbound.h"
#include "sync/fact.h"

namespace dfm {
namespace {

constexpr int64_t kOrganizationMemoryUs = 86400LL * 1000000;
constexpr size_t kOrganizationsRemembered = 10000;

// Apollo's limits: requests left in the minute and in the day windows
// (x-24-hour-requests-left, formerly x-daily-requests-left), Retry-After.
void ReadApolloLimits(const HttpResponse& r, PushResult* res) {
  ReadRateHeaders(r, res);
  if (auto v = HeaderInt(r, "x-minute-requests-left")) res->rate_remaining = static_cast<int>(*v);
  if (auto v = HeaderInt(r, "x-24-hour-requests-left")) res->daily_remaining = *v;
  else if (auto d = HeaderInt(r, "x-daily-requests-left")) res->daily_remaining = *d;
}

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class ApolloClient final : public VendorClient {
 public:
  ApolloClient(const SystemSettings& s, HttpClient* http)
      : http_(http), base_(ApiBaseUrl(s)), timeout_ms_(std::stoll(s.at("request_timeout_ms"))) {}

  void Push(const PushRequest& req, const Credentials& creds,
            std::function<void(PushResult)> done) override {
    if (req.op != "enrich") {
      PushResult r;
      r.http_status = 422;
      r.detail = "Apollo has no push op \"" + req.op + "\"";
      return done(std::move(r));
    }
    auto job = std::make_shared<Job>();
    job->req = req;
    job->key = creds.access_token;
    job->done = std::move(done);
    const std::string email = req.Field(fields::kEmail);
    const bool named = !req.Field(fields::kFirstName).empty() || !req.Field(fields::kLastName).empty();
    const bool employer = !req.Field(fields::kCompanyDomain).empty() || !req.Field(fields::kCompanyName).empty();
    if (!email.empty() || (named && employer)) return MatchPerson(job);
    if (!req.Field(fields::kCompanyDomain).empty()) return EnrichOrganization(job);
    job->result.http_status = 200;  // nothing Apollo could match: no match, no request
    job->result.detail = "nothing to ask Apollo: no email, no name with a company";
    Finish(job);
  }

  // A person matched (1) and, with a domain, an organization found (1).
  int MaxCredits(const PushRequest& req) const override {
    if (req.op != "enrich") return 0;
    return 1 + (req.Field(fields::kCompanyDomain).empty() ? 0 : 1);
  }

 private:
  struct Job {
    PushRequest req;
    std::string key;
    std::function<void(PushResult)> done;
    PushResult result;
  };
  struct Remembered {
    std::map<std::string, std::string> fields;
    int64_t until_us = 0;
  };

  HttpRequest Request(const Job& job, const char* method, std::string url) const {
    HttpRequest r;
    r.method = method;
    r.url = base_ + std::move(url);
    r.timeout_ms = timeout_ms_;
    r.headers = {{"x-api-key", job.key}, {"Accept", "application/json"}, {"Cache-Control", "no-cache"}};
    return r;
  }

  void MatchPerson(std::shared_ptr<Job> job) {
    std::string q = "/people/match?reveal_personal_emails=false&reveal_phone_number=false";
    for (const auto& [ours, theirs] : {std::pair{fields::kEmail, "email"},
                                       std::pair{fields::kFirstName, "first_name"},
                                       std::pair{fields::kLastName, "last_name"},
                                       std::pair{fields::kCompanyName, "organization_name"},
                                       std::pair{fields::kCompanyDomain, "domain"}}) {
      const std::string v = job->req.Field(ours);
      if (!v.empty()) q += std::string("&") + theirs + "=" + UrlEscape(v);
    }
    HttpRequest r = Request(*job, "POST", std::move(q));
    http_->Send(std::move(r), [this, job](HttpResponse resp) {
      PushResult& res = job->result;
      res.requests++;
      res.http_status = resp.status;
      ReadApolloLimits(resp, &res);
      if (resp.status / 100 != 2) return Fail(job, resp);
      if (!ReadApolloPerson(resp.body, &res.answered)) {
        res.http_status = 0;  // unreadable: no answer, asked again
        res.detail = "Apollo's people/match answer is not JSON";
        return Finish(job);
      }
      if (!res.answered.empty()) res.credits += 1;
      const std::string domain = job->req.Field(fields::kCompanyDomain);
      const bool affordable = job->req.max_credits < 0 || res.credits < job->req.max_credits;
      if (!domain.empty() && !res.answered.count(fields::kCompanyName) && affordable)
        return EnrichOrganization(job);
      res.detail = res.answered.empty() ? "no match" : "person matched";
      Finish(job);
    });
  }

  void EnrichOrganization(std::shared_ptr<Job> job) {
    const std::string domain = job->req.Field(fields::kCompanyDomain);
    if (Recall(domain, &job->result.answered)) {
      if (job->result.http_status == 0) job->result.http_status = 200;
      job->result.detail = "organization remembered";
      return Finish(job);
    }
    const bool person_answered = job->result.requests > 0;
    HttpRequest r = Request(*job, "GET", "/organizations/enrich?domain=" + UrlEscape(domain));
    http_->Send(std::move(r), [this, job, domain, person_answered](HttpResponse resp) {
      PushResult& res = job->result;
      res.requests++;
      ReadApolloLimits(resp, &res);
      std::map<std::string, std::string> org;
      if (resp.status / 100 == 2 && ReadApolloOrganization(resp.body, &org)) {
        res.http_status = resp.status;
        if (!org.empty()) res.credits += 1;
        Remember(domain, org);
        for (auto& [f, v] : org) res.answered.emplace(f, v);  // the person's own first
        res.detail = res.answered.empty() ? "no match" : "matched";
        return Finish(job);
      }
      if (person_answered) {  // keep what was paid for
        res.detail = "person answered; organization not: " + ApolloErrorDetail(resp);
        return Finish(job);
      }
      res.http_status = resp.status / 100 == 2 ? 0 : resp.status;
      if (resp.status / 100 == 2) {
        res.detail = "Apollo's organizations/enrich answer is not JSON";
        return Finish(job);
      }
      Fail(job, resp);
    });
  }

  void Fail(std::shared_ptr<Job> job, const HttpResponse& resp) {
    PushResult& res = job->result;
    res.http_status = resp.status;
    res.auth_rejected = resp.status == 401;
    res.detail = ApolloErrorDetail(resp);
    if (ApolloCreditsSpent(resp)) res.detail = "Apollo credits are spent: " + res.detail;
    Finish(job);
  }

  static void Finish(std::shared_ptr<Job> job) { job->done(std::move(job->result)); }

  bool Recall(const std::string& domain, std::map<std::string, std::string>* out) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = organizations_.find(domain);
    if (it == organizations_.end() || it->second.until_us < NowUs()) return false;
    for (const auto& [f, v] : it->second.fields) out->emplace(f, v);
    return true;
  }

  void Remember(const std::string& domain, const std::map<std::string, std::string>& fields) {
    std::lock_guard<std::mutex> lock(mu_);
    if (organizations_.size() >= kOrganizationsRemembered) organizations_.clear();
    organizations_[domain] = {fields, NowUs() + kOrganizationMemoryUs};
  }

  HttpClient* http_;
  std::string base_;
  int64_t timeout_ms_;
  std::mutex mu_;
  std::unordered_map<std::string, Remembered> organizations_;  // by domain
};

}  // namespace

std::vector<SettingSpec> ApolloApiSettings() {
  std::vector<SettingSpec> settings = {
      {"api_base_url", false, "", "Apollo API base URL (https://api.apollo.io/api/v1); empty: no enrichment"},
      {"api_key", true, "", "Apollo API key (x-api-key), scoped to people/match and organizations/enrich"},
      {"daily_credit_budget", false, "100",
       "credits a day (UTC) the tenant's enrichment may spend; 0: no budget", true},
  };
  AddDeliverySettings(&settings, {"50", "60000", "600", "Apollo's Free plan: 50 a minute, 600 a day"});
  return settings;
}

std::unique_ptr<VendorClient> NewApolloClient(const SystemSettings& s, HttpClient* http) {
  return std::make_unique<ApolloClient>(s, http);
}

Credentials ApolloCredentials(const SystemSettings& s) {
  Credentials c;
  c.access_token = s.at("api_key");
  return c;
}

}  // namespace dfm
