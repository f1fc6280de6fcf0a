// What `dfm diagnose` checks with Aloware (connectors/common/probe.h): the
// API token, with GET /api/v1/webhook/users?api_token=... (the documented
// read that every token may make; docs/vendors/aloware-api.md §5): 200 the
// token is taken, 401 {"message":"Unauthenticated."} it is not.
#include "connectors/aloware/aloware.h"
#include "util/clock.h"

namespace dfm {

void ProbeAloware(const SystemSettings& s, const Credentials& c, HttpClient* http,
                  ProbeCallback done) {
  if (!HasApiBaseUrl(s)) {
    ProbeResult r;
    r.checks.push_back({"API token", ProbeCheck::State::kSkipped,
                        "aloware.api_base_url is empty: nothing is pushed to Aloware", ""});
    done(std::move(r));
    return;
  }
  HttpRequest req;
  req.url = ApiBaseUrl(s) + "/api/v1/webhook/users?api_token=" + UrlEscape(c.access_token);
  req.timeout_ms = std::stoll(s.at("request_timeout_ms"));
  req.headers = {{"Accept", "application/json"}};
  const int64_t sent = SystemClock::Instance()->NowMicros();
  http->Send(std::move(req), [done = std::move(done), sent](HttpResponse resp) {
    ProbeResult r;
    NoteAnswer(resp, sent, &r);
    r.checks.push_back(
        ExpectOk("API token", resp, "taken", "aloware.api_base_url", "aloware.api_token"));
    done(std::move(r));
  });
}

}  // namespace dfm
