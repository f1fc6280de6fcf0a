// What `dfm diagnose` checks with Apollo (connectors/common/probe.h): the
// key and each scope the enrichment needs, with lookups of the reserved
// domain example.com (RFC 2606): they find nobody, and Apollo charges
// credits only for data found (docs/vendors/apollo.md section 4).
// 401 refuses the key; 403 says the key (or the plan) lacks the endpoint.
#include "connectors/apollo/apollo.h"
#include "connectors/common/outbound.h"
#include "util/clock.h"

namespace dfm {

namespace {

HttpRequest ProbeRequest(const SystemSettings& s, const Credentials& c, const char* method, std::string path) {
  HttpRequest req;
  req.method = method;
  req.url = ApiBaseUrl(s) + std::move(path);
  req.timeout_ms = std::stoll(s.at("request_timeout_ms"));
  req.headers = {{"x-api-key", c.access_token}, {"Accept", "application/json"}};
  return req;
}

ProbeCheck Scope(const std::string& name, const HttpResponse& resp) {
  ProbeCheck check = ExpectOk(name, resp, "taken", "apollo.api_base_url", "apollo.api_key");
  if (resp.status == 403) {
    check.detail = ApolloErrorDetail(resp);
    check.hint = "give apollo.api_key this endpoint's scope (or a master key); Apollo's Free plan has "
                 "no people/match";
  }
  if (ApolloCreditsSpent(resp)) check.hint = "the team's Apollo credits are spent: add credits";
  return check;
}

}  // namespace

void ProbeApollo(const SystemSettings& s, const Credentials& c, HttpClient* http, ProbeCallback done) {
  if (!HasApiBaseUrl(s)) {
    ProbeResult r;
    r.checks.push_back({"API key", ProbeCheck::State::kSkipped,
                        "apollo.api_base_url is empty: nobody is enriched", ""});
    done(std::move(r));
    return;
  }
  const int64_t sent = SystemClock::Instance()->NowMicros();
  HttpRequest people = ProbeRequest(s, c, "POST",
                             "/people/match?email=nobody%40example.com&reveal_personal_emails=false"
                             "&reveal_phone_number=false");
  HttpRequest orgs = ProbeRequest(s, c, "GET", "/organizations/enrich?domain=example.com");
  http->Send(std::move(people), [http, orgs = std::move(orgs), done = std::move(done), sent](
                                    HttpResponse a) mutable {
    auto result = std::make_shared<ProbeResult>();
    NoteAnswer(a, sent, result.get());
    result->checks.push_back(Scope("API key and people/match", a));
    http->Send(std::move(orgs), [result, done = std::move(done), sent](HttpResponse b) {
      NoteAnswer(b, sent, result.get());
      result->checks.push_back(Scope("organizations/enrich", b));
      done(std::move(*result));
    });
  });
}

}  // namespace dfm
