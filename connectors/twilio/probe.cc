// What `dfm diagnose` checks with Twilio (connectors/common/probe.h): the
// auth token that signs its webhooks, against the account it belongs to:
// GET /2010-04-01/Accounts/{twilio.account_sid}.json with Basic
// account_sid:auth_token (docs/vendors/twilio-api.md). 200 with status
// "active": the token is the account's; "suspended" or "closed": Twilio
// sends nothing more; 401 (20003): a token that is not the account's,
// whose webhook signatures the service would refuse; 404 (20404): no such
// account. Without twilio.account_sid only the webhooks are checked.
#include <simdjson.h>

#include "connectors/twilio/twilio.h"
#include "util/clock.h"
#include "util/crypto.h"

namespace dfm {

void ProbeTwilio(const SystemSettings& s, const Credentials&, HttpClient* http, ProbeCallback done) {
  const std::string sid = s.at("account_sid");
  if (sid.empty()) {
    ProbeResult r;
    r.checks.push_back({"account", ProbeCheck::State::kSkipped,
                        "twilio.account_sid is not set: the auth token is not checked with Twilio",
                        ""});
    done(std::move(r));
    return;
  }
  HttpRequest req;
  req.url = ApiBaseUrl(s) + "/2010-04-01/Accounts/" + UrlEscape(sid) + ".json";
  req.timeout_ms = std::stoll(s.at("request_timeout_ms"));
  req.headers = {{"Authorization", "Basic " + Base64Encode(sid + ":" + s.at("auth_token"))},
                 {"Accept", "application/json"}};
  const int64_t sent = SystemClock::Instance()->NowMicros();
  http->Send(std::move(req), [done = std::move(done), sent, sid](HttpResponse resp) {
    ProbeResult r;
    NoteAnswer(resp, sent, &r);
    ProbeCheck c = ExpectOk("account and auth token", resp, "", "twilio.api_base_url",
                            "twilio.auth_token (Console > Account > API keys & tokens)");
    if (resp.status == 401)
      c.detail += "; webhooks Twilio signs with the account's token are refused too";
    if (resp.status == 404) {
      c.detail = "no account " + sid + ": " + SafeDetail(resp.status, resp.body);
      c.hint = "check twilio.account_sid";
    }
    if (c.state == ProbeCheck::State::kOk) {
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      std::string_view status = "?", type = "?";
      if (parser.parse(resp.body).get(doc) == simdjson::SUCCESS) {
        if (doc["status"].get(status) != simdjson::SUCCESS) status = "?";
        if (doc["type"].get(type) != simdjson::SUCCESS) type = "?";
      }
      if (status == "active") {
        c.detail = "the auth token is account " + sid + "'s (active, " + std::string(type) + ")";
      } else {
        c.state = ProbeCheck::State::kFail;
        c.detail = "account " + sid + " is " + std::string(status) + ": Twilio sends no messages";
        c.hint = "reactivate the account in Twilio's console";
      }
    }
    r.checks.push_back(std::move(c));
    done(std::move(r));
  });
}

}  // namespace dfm
