// What `dfm diagnose` checks with Verity (connectors/common/probe.h): the
// API key, with GET /v1/contacts/%2B15550000000 (docs/verity.md): Verity
// checks the key before anything else, so 200 or 404 say the key is taken
// and 401 that it is not. The number is a reserved fictional one: no
// person's.
#include "connectors/verity/verity.h"
#include "util/clock.h"

namespace dfm {

void ProbeVerity(const SystemSettings& s, const Credentials& c, HttpClient* http,
                 ProbeCallback done) {
  if (!HasApiBaseUrl(s)) {
    ProbeResult r;
    r.checks.push_back({"API key", ProbeCheck::State::kSkipped,
                        "verity.api_base_url is empty: nothing is sent to Verity", ""});
    done(std::move(r));
    return;
  }
  HttpRequest req;
  req.url = ApiBaseUrl(s) + "/v1/contacts/%2B15550000000";
  req.timeout_ms = std::stoll(s.at("request_timeout_ms"));
  req.headers = {{"Authorization", "Bearer " + c.access_token}, {"Accept", "application/json"}};
  const int64_t sent = SystemClock::Instance()->NowMicros();
  http->Send(std::move(req), [done = std::move(done), sent](HttpResponse resp) {
    ProbeResult r;
    NoteAnswer(resp, sent, &r);
    if (resp.status == 404) resp.status = 200;  // no such contact: the key was taken
    r.checks.push_back(ExpectOk("API key", resp, "taken", "verity.api_base_url", "verity.api_key"));
    done(std::move(r));
  });
}

}  // namespace dfm
