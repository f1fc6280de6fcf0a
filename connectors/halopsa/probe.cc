// What `dfm diagnose` checks with HaloPSA (connectors/common/probe.h): the
// client credentials (a token is asked for, as the connector does), then
// every mapped custom field (`custom_fields`) in GET /api/FieldInfo: it
// must exist, by its name (with or without the CF prefix HaloPSA adds),
// with a type that can hold the field's values; then the Clients (GET
// /api/Client pages): any held twice under one name or domain are named,
// with the one new users go to. Nothing is written.
#include <simdjson.h>

#include <memory>

#include "connectors/common/outbound.h"
#include "connectors/halopsa/clients_cache.h"
#include "connectors/halopsa/halopsa.h"
#include "connectors/halopsa/paged_walk.h"
#include "util/clock.h"

namespace dfm {

namespace {

ProbeCheck CustomFields(const SystemSettings& s, const HttpResponse& resp) {
  std::string problem;
  const HaloCustomFields mapped = ParseHaloCustomFields(s.at("custom_fields"), &problem).value_or(HaloCustomFields{});
  ProbeCheck check = ExpectOk("custom fields", resp, "", "halopsa.api_base_url", "halopsa.client_id");
  if (check.state != ProbeCheck::State::kOk) return check;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array all;
  if (parser.parse(resp.body).get(doc) || doc.get(all)) {
    return {"custom fields", ProbeCheck::State::kFail, "HaloPSA's FieldInfo answer does not read", ""};
  }
  std::vector<std::string> missing, wrong;
  for (const auto& [ours, theirs] : mapped) {
    bool found = false;
    for (simdjson::dom::element f : all) {
      std::string_view name;
      if (f["name"].get(name)) continue;
      if (name != theirs && "CF" + std::string(name) != theirs && name != "CF" + theirs) continue;
      found = true;
      int64_t type = 0, input = 0;
      if (f["type"].get(type)) type = -1;
      if (f["inputtype"].get(input)) input = 0;
      const std::string why = HaloFieldTypeProblem(ours, static_cast<int>(type), static_cast<int>(input));
      if (!why.empty()) wrong.push_back(theirs + " (for " + ours + ") " + why);
    }
    if (!found) missing.push_back(theirs + " (for " + ours + ")");
  }
  if (missing.empty() && wrong.empty())
    return {"custom fields", ProbeCheck::State::kOk, std::to_string(mapped.size()) + " mapped, all there", ""};
  std::string detail;
  for (const auto& m : missing) detail += (detail.empty() ? "" : "; ") + std::string("no field ") + m;
  for (const auto& w : wrong) detail += (detail.empty() ? "" : "; ") + w;
  return {"custom fields", ProbeCheck::State::kFail, detail,
          "create it in HaloPSA (Configuration > Custom Objects > Custom Fields, on users) as a text "
          "field, or change halopsa.custom_fields"};
}

// Walks GET /api/Client pages in id order (paged_walk.h; at most 50 of
// 100) into `listed`, then adds the duplicates check to `r` and calls `done`.
void CheckDuplicateClients(const SystemSettings& s, const std::string& token, HttpClient* http,
                           ProbeResult r, ProbeCallback done, int64_t sent, HaloWalkAt at,
                           std::shared_ptr<std::vector<HaloClientRecord>> listed) {
  constexpr int kPage = 100, kMostPages = 50;
  HaloWalk w;
  w.list = "/api/Client?pageinate=true";
  w.key = "clients";
  w.page_size = kPage;
  w.request = [s, token](const std::string& path) {
    HttpRequest req;
    req.url = ApiBaseUrl(s) + path;
    req.timeout_ms = std::stoll(s.at("request_timeout_ms"));
    req.headers = {{"Authorization", "Bearer " + token}, {"Accept", "application/json"}};
    return req;
  };
  w.send = [http](HttpRequest req, HttpCallback cb) { http->Send(std::move(req), std::move(cb)); };
  ReadHaloPage(w, at, [s, token, http, r, done, sent, listed](HaloPage hp) mutable {
    NoteAnswer(hp.answer, sent, &r);
    ProbeCheck check =
        ExpectOk("clients", hp.answer, "", "halopsa.api_base_url", "halopsa.client_id");
    int64_t total = 0;
    if (check.state == ProbeCheck::State::kOk &&
        (!hp.ok() || !ReadHaloClients(hp.answer.body, false, listed.get(), &total)))
      check = {"clients", ProbeCheck::State::kFail, "HaloPSA's Client list does not read", ""};
    if (check.state != ProbeCheck::State::kOk) {
      r.checks.push_back(check);
      return done(std::move(r));
    }
    if (hp.next && hp.next->page <= kMostPages)
      return CheckDuplicateClients(s, token, http, std::move(r), std::move(done), sent, *hp.next,
                                   listed);
    KeepOncePerId(listed.get());  // a step back reads a page again
    HaloClientsCache all;
    all.Replace(std::move(*listed), 0, 0);
    const std::string dupes = all.DuplicatesText();
    r.checks.push_back(dupes.empty()
                           ? ProbeCheck{"clients", ProbeCheck::State::kOk,
                                        std::to_string(total) + " Clients, none held twice", ""}
                           : ProbeCheck{"clients", ProbeCheck::State::kFail, dupes,
                                        "merge them in HaloPSA (the service files new users under the "
                                        "lowest id meanwhile)"});
    done(std::move(r));
  });
}

}  // namespace

void ProbeHalo(const SystemSettings& s, const Credentials&, HttpClient* http, ProbeCallback done) {
  if (!HasApiBaseUrl(s)) {
    ProbeResult r;
    r.checks.push_back({"client credentials", ProbeCheck::State::kSkipped,
                        "halopsa.api_base_url is empty: nothing is sent to HaloPSA", ""});
    done(std::move(r));
    return;
  }
  const int64_t sent = SystemClock::Instance()->NowMicros();
  http->Send(HaloTokenRequest(s), [s, http, done = std::move(done), sent](HttpResponse t) {
    ProbeResult r;
    NoteAnswer(t, sent, &r);
    TokenGrant g = ReadHaloToken(t);
    ProbeCheck token = ExpectOk("client credentials", t, "a token was granted", "halopsa.api_base_url",
                                "halopsa.client_id and halopsa.client_secret");
    if (t.status / 100 == 2 && !g.ok) token = {"client credentials", ProbeCheck::State::kFail, g.detail, ""};
    r.checks.push_back(token);
    if (!g.ok) {
      r.checks.push_back({"custom fields", ProbeCheck::State::kSkipped, "no token", ""});
      r.checks.push_back({"clients", ProbeCheck::State::kSkipped, "no token", ""});
      return done(std::move(r));
    }
    HttpRequest req;
    req.url = ApiBaseUrl(s) + "/api/FieldInfo";
    req.timeout_ms = std::stoll(s.at("request_timeout_ms"));
    req.headers = {{"Authorization", "Bearer " + g.access_token}, {"Accept", "application/json"}};
    http->Send(std::move(req), [s, r, done, sent, http, access = g.access_token](HttpResponse f) mutable {
      NoteAnswer(f, sent, &r);
      r.checks.push_back(CustomFields(s, f));
      CheckDuplicateClients(s, access, http, std::move(r), std::move(done), sent, HaloWalkAt{},
                            std::make_shared<std::vector<HaloClientRecord>>());
    });
  });
}

}  // namespace dfm
