// What `dfm diagnose` checks with GoHighLevel (connectors/common/probe.h):
//
// token and location: GET /locations/{ghl.location_id} (Version 2021-07-28,
//   scope locations.readonly; docs/vendors/ghl-api.md §10): 200 the token
//   reaches the location; 401 refused; 400/403/422 the location is not this
//   token's.
// conversation provider (when ghl.conversation_provider_id is set):
//   GoHighLevel has no read endpoint for a provider, so the probe posts an
//   inbound message naming the provider and a contact id that cannot exist
//   ("dfm-diagnose-probe"): 400 "Invalid conversationProviderId" says the
//   provider is not the app's or not installed (§4.1, S21); any other
//   refusal of the unknown contact says the provider was taken. Nothing is
//   recorded: there is no such contact.
#include <simdjson.h>

#include <memory>

#include "connectors/ghl/ghl.h"
#include "util/clock.h"
#include "util/json.h"

namespace dfm {

namespace {

struct Probing {
  ProbeResult result;
  ProbeCallback done;
};

HttpRequest Request(const SystemSettings& s, const Credentials& c, std::string method,
                    std::string path, const char* version) {
  HttpRequest r;
  r.method = std::move(method);
  r.url = ApiBaseUrl(s) + path;
  r.timeout_ms = std::stoll(s.at("request_timeout_ms"));
  r.headers = {{"Authorization", "Bearer " + c.access_token},
               {"Version", version},
               {"Accept", "application/json"}};
  return r;
}

std::string LocationName(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view name;
  if (parser.parse(body).get(doc) == simdjson::SUCCESS &&
      doc["location"]["name"].get(name) == simdjson::SUCCESS)
    return std::string(name);
  return "";
}

void ProbeProvider(const SystemSettings& s, const Credentials& c, HttpClient* http,
                   std::shared_ptr<Probing> p) {
  const std::string provider = s.at("conversation_provider_id");
  if (provider.empty()) {
    p->result.checks.push_back({"conversation provider", ProbeCheck::State::kSkipped,
                                "ghl.conversation_provider_id is empty: texts and calls are not "
                                "recorded in GoHighLevel",
                                ""});
    p->done(std::move(p->result));
    return;
  }
  HttpRequest r = Request(s, c, "POST", "/conversations/messages/inbound", "2021-04-15");
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = JsonObject()
               .Str("type", "SMS")
               .Str("conversationProviderId", provider)
               .Str("contactId", "dfm-diagnose-probe")
               .Str("message", "dfm diagnose")
               .Finish();
  const int64_t sent = SystemClock::Instance()->NowMicros();
  http->Send(std::move(r), [p, provider, sent](HttpResponse resp) {
    NoteAnswer(resp, sent, &p->result);
    ProbeCheck check;
    check.name = "conversation provider";
    if (resp.status == 0 || resp.status == 401) {
      check = ExpectOk(check.name, resp, "", "ghl.api_base_url", "ghl.access_token");
    } else if (resp.body.find("Invalid conversationProviderId") != std::string::npos) {
      check.state = ProbeCheck::State::kFail;
      check.detail = "GoHighLevel does not know provider " + provider + " for this app";
      check.hint = "install the marketplace app's conversation provider in the location, or set "
                   "ghl.conversation_provider_id to its id (Settings > Phone Numbers / the app's "
                   "Conversation Providers page)";
    } else if (resp.status >= 500) {
      check.state = ProbeCheck::State::kFail;
      check.detail = "answered " + SafeDetail(resp.status, resp.body);
      check.hint = "GoHighLevel has trouble; try again later";
    } else {
      check.detail = "provider " + provider + " accepted (the probe names no contact: nothing recorded)";
    }
    p->result.checks.push_back(std::move(check));
    p->done(std::move(p->result));
  });
}

}  // namespace

void ProbeGhl(const SystemSettings& s, const Credentials& c, HttpClient* http, ProbeCallback done) {
  auto p = std::make_shared<Probing>();
  p->done = std::move(done);
  if (!HasApiBaseUrl(s)) {
    p->result.checks.push_back({"API", ProbeCheck::State::kSkipped,
                                "ghl.api_base_url is empty: nothing is pushed to GoHighLevel", ""});
    p->done(std::move(p->result));
    return;
  }
  const std::string location = s.at("location_id");
  const int64_t sent = SystemClock::Instance()->NowMicros();
  http->Send(Request(s, c, "GET", "/locations/" + location, "2021-07-28"),
             [s, c, http, p, location, sent](HttpResponse resp) {
               NoteAnswer(resp, sent, &p->result);
               ProbeCheck check = ExpectOk("token and location", resp, "", "ghl.api_base_url",
                                           "ghl.access_token (or the OAuth grant)");
               if (check.state == ProbeCheck::State::kOk) {
                 const std::string name = LocationName(resp.body);
                 check.detail = "the token reaches location " + location +
                                (name.empty() ? "" : " (" + name + ")");
               } else if (resp.status == 400 || resp.status == 403 || resp.status == 422) {
                 check.detail = "location " + location + " is not this token's: " +
                                SafeDetail(resp.status, resp.body);
                 check.hint = "check ghl.location_id, and that the token was issued for that "
                              "sub-account";
               }
               const bool token_ok = check.state == ProbeCheck::State::kOk;
               p->result.checks.push_back(std::move(check));
               if (!token_ok) {
                 p->done(std::move(p->result));
                 return;
               }
               ProbeProvider(s, c, http, p);
             });
}

}  // namespace dfm
