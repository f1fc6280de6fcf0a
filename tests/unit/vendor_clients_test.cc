// Vendors' API clients (connectors/*/client.cc) against answers played by
// a scripted HttpClient: what they ask and how they read the answers.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "connectors/aloware/aloware.h"
#include "connectors/common/http_client.h"
#include "connectors/common/outbound.h"
#include "connectors/genesys/genesys.h"
#include "connectors/ghl/ghl.h"
#include "connectors/halopsa/halopsa.h"
#include "sync/consent.h"
#include "tests/support/connector_settings.h"
#include "util/crypto.h"

namespace dfm {
namespace {

// Answers each request at once with what `answer` says for it; keeps them.
class ScriptedHttp : public HttpClient {
 public:
  explicit ScriptedHttp(std::function<HttpResponse(const HttpRequest&)> answer)
      : answer_(std::move(answer)) {}
  std::vector<std::string> asked;  // "<method> <url>"
  void Send(HttpRequest req, HttpCallback cb) override {
    asked.push_back(req.method + " " + req.url);
    cb(answer_(req));
  }

 private:
  std::function<HttpResponse(const HttpRequest&)> answer_;
};

SystemSettings GhlSettings() {
  return testing::DefaultSettings("ghl", {{"api_base_url", "http://127.0.0.1:9"},
                                          {"location_id", "loc-1"},
                                          {"conversation_provider_id", "prov-1"},
                                          {"access_token", "tok"}});
}

// A push of `op` for contact c-1, linked to `own` there ("" when not).
PushRequest Request(const std::string& op, const std::string& own) {
  PushRequest req;
  req.push_id = "p-1";
  req.contact_id = "c-1";
  req.op = op;
  req.external_id = own;
  return req;
}

HttpResponse Ok(std::string body) {
  HttpResponse r;
  r.status = 200;
  r.body = std::move(body);
  return r;
}

// A consent push sets every record of the person: the search's records
// by phone or email, which may be another contact's (two people sharing a
// phone). Its answer names them all (answer.ids) but links the contact to
// none it did not already hold: before, the first one found became the
// contact's own record, so its later upserts went to the other person's.
TEST(GhlClient, AConsentPushLinksTheContactToNoRecordTheSearchFound) {
  // The search finds `found`; a PUT to g-gone answers 404 (merged away).
  auto opt_out = [](const std::string& own, const std::string& found) {
    ScriptedHttp http([&](const HttpRequest& r) {
      if (r.url.find("/contacts/search") != std::string::npos) return Ok(found);
      if (r.url.find("/contacts/g-gone") == std::string::npos) return Ok(R"({"contact":{}})");
      HttpResponse gone;
      gone.status = 404;
      gone.body = R"({"message":"Contact not found"})";
      return gone;
    });
    auto client = NewGhlClient(GhlSettings(), &http);
    PushRequest req = Request("opt_out", own);
    req.channel = "sms";
    req.fields["phone"] = "+12055550142";
    PushResult got;
    client->Push(req, Credentials{"tok", "", 0}, [&](PushResult r) { got = std::move(r); });
    EXPECT_EQ(got.http_status, 200) << own;
    return got;
  };
  const std::string both = R"({"contacts":[{"id":"g-other"},{"id":"g-own"}]})";
  PushResult got = opt_out("", both);
  EXPECT_EQ(got.external_id, "") << "none of its own: none linked";
  EXPECT_EQ(got.answered["ids"], "g-other,g-own");
  got = opt_out("g-own", both);
  EXPECT_EQ(got.external_id, "g-own");
  EXPECT_EQ(got.answered["ids"], "g-own,g-other");
  got = opt_out("g-gone", R"({"contacts":[{"id":"g-other"}]})");
  EXPECT_EQ(got.external_id, "") << "its own merged away: the other is set, not linked";
  EXPECT_EQ(got.answered["ids"], "g-other");
}

// GoHighLevel's search is eventually consistent: right after our opt-in
// lifted a record's DND, the search may still list it set. A read that
// follows a push of ours (field "after") reads the record the push wrote
// by id; a read without one (reconcile's) keeps the search's copy.
TEST(GhlClient, AReadAfterOurPushReadsItsOwnRecordByIdNotTheSearchsCopy) {
  ScriptedHttp http([](const HttpRequest& r) {
    if (r.url.find("/contacts/search") != std::string::npos)
      return Ok(
          R"({"contacts":[{"id":"g-own","dnd":false,"dndSettings":{"SMS":{"status":"active"}}}]})");
    return Ok(
        R"({"contact":{"id":"g-own","dnd":false,"dndSettings":{"SMS":{"status":"inactive"}}}})");
  });
  auto client = NewGhlClient(GhlSettings(), &http);
  auto read = [&](const std::string& after) {
    PushRequest req = Request("read_consent", "g-own");
    req.channel = "sms";
    req.fields["phone"] = "+12055550142";
    if (!after.empty()) req.fields["after"] = after;
    http.asked.clear();
    PushResult got;
    client->Push(req, Credentials{"tok", "", 0}, [&](PushResult r) { got = std::move(r); });
    EXPECT_EQ(got.http_status, 200) << got.detail;
    return got;
  };
  PushResult got = read("");
  EXPECT_EQ(got.answered["held.sms"], "out") << "the search's copy";
  EXPECT_EQ(http.asked.size(), 1u);
  got = read("opt_in");
  EXPECT_EQ(got.answered["held.sms"], "in") << "the record as the push left it";
  ASSERT_EQ(http.asked.size(), 2u);
  EXPECT_NE(http.asked[1].find("GET "), std::string::npos);
  EXPECT_NE(http.asked[1].find("/contacts/g-own"), std::string::npos);
  EXPECT_EQ(got.detail, "read 1 GoHighLevel contact");
}

// A read after our opt-out reads every record the push set (its
// answer.ids, field "ids") by id: a duplicate's copy in the search, from
// before the push, would make the opt-out look lifted there.
TEST(GhlClient, AReadAfterOurOptOutReadsEachRecordItSetById) {
  bool own_gone = false;
  ScriptedHttp http([&own_gone](const HttpRequest& r) {
    if (r.url.find("/contacts/search") != std::string::npos)
      return Ok(R"({"contacts":[{"id":"g-own","dndSettings":{"SMS":{"status":"inactive"}}},)"
                R"({"id":"g-dup","dndSettings":{"SMS":{"status":"inactive"}}}]})");
    const std::string id = r.url.find("g-dup") != std::string::npos ? "g-dup" : "g-own";
    if (own_gone && id == "g-own") {
      HttpResponse gone;
      gone.status = 404;
      gone.body = R"({"message":"Contact not found"})";
      return gone;
    }
    return Ok(R"({"contact":{"id":")" + id + R"(","dndSettings":{"SMS":{"status":"active"}}}})");
  });
  auto client = NewGhlClient(GhlSettings(), &http);
  auto read = [&](const std::string& ids) {
    PushRequest req = Request("read_consent", "g-own");
    req.channel = "sms";
    req.fields["phone"] = "+12055550142";
    req.fields["after"] = "opt_out";
    req.fields["ids"] = ids;
    http.asked.clear();
    PushResult got;
    client->Push(req, Credentials{"tok", "", 0}, [&](PushResult r) { got = std::move(r); });
    EXPECT_EQ(got.http_status, 200) << got.detail;
    return got;
  };
  EXPECT_EQ(read("g-own").answered["held.sms"], "in") << "the duplicate's stale copy";
  PushResult got = read("g-own,g-dup");
  EXPECT_EQ(got.answered["held.sms"], "out");
  EXPECT_EQ(http.asked.size(), 3u) << "the search, then each by id";
  EXPECT_EQ(got.detail, "read 2 GoHighLevel contacts");
  // Its own record merged away (the push set the other): the other tells.
  own_gone = true;
  got = read("g-dup");
  EXPECT_EQ(got.answered["held.sms"], "out");
  EXPECT_EQ(got.detail, "read 1 GoHighLevel contact");
  EXPECT_EQ(read("").answered.count("held.sms"), 0u) << "none read by id: nothing";
  own_gone = false;
  PushRequest unlinked = Request("read_consent", "");
  unlinked.channel = "sms";
  unlinked.fields["phone"] = "+12055550142";
  unlinked.fields["after"] = "opt_out";
  got = PushResult();
  client->Push(unlinked, Credentials{"tok", "", 0}, [&](PushResult r) { got = std::move(r); });
  EXPECT_EQ(got.http_status, 200) << got.detail;
  EXPECT_EQ(got.answered.count("held.sms"), 0u) << "no record of its own, none named";
}

// A consent push that finds no record makes one with its DND (POST
// /contacts/upsert) and names it as the record it set (answer.ids), so the
// read after it reads that record by id.
TEST(GhlClient, AConsentPushsNewRecordIsTheOneItSet) {
  ScriptedHttp http([](const HttpRequest& r) {
    if (r.url.find("/contacts/search") != std::string::npos) return Ok(R"({"contacts":[]})");
    return Ok(R"({"contact":{"id":"g-new"}})");
  });
  auto client = NewGhlClient(GhlSettings(), &http);
  PushRequest req = Request("opt_out", "");
  req.channel = "sms";
  req.fields["phone"] = "+12055550142";
  PushResult got;
  client->Push(req, Credentials{"tok", "", 0}, [&](PushResult r) { got = std::move(r); });
  EXPECT_EQ(got.http_status, 200) << got.detail;
  EXPECT_EQ(got.external_id, "g-new");
  EXPECT_EQ(got.answered["ids"], "g-new");
}

// An opt-in or a deletion's mark that finds no record of the person has
// nothing to lift or mark: it makes none (before, it made one with
// POST /contacts/upsert, bringing back a contact staff had deleted). Only
// an opt-out makes one (above).
TEST(GhlClient, AnOptInOrAMarkThatFindsNoRecordMakesNone) {
  for (const char* op : {"opt_in", "mark_dnc"}) {
    ScriptedHttp http([](const HttpRequest& r) {
      if (r.url.find("/contacts/search") != std::string::npos) return Ok(R"({"contacts":[]})");
      return Ok(R"({"contact":{"id":"g-new"}})");
    });
    auto client = NewGhlClient(GhlSettings(), &http);
    PushRequest req = Request(op, "");
    if (std::string(op) == "opt_in") req.channel = "sms";
    req.fields["phone"] = "+12055550142";
    PushResult got;
    client->Push(req, Credentials{"tok", "", 0}, [&](PushResult r) { got = std::move(r); });
    EXPECT_EQ(got.http_status, 200) << op << ": " << got.detail;
    EXPECT_EQ(got.external_id, "") << op;
    EXPECT_EQ(got.answered.count("ids"), 0u) << op;
    for (const auto& asked : http.asked)
      EXPECT_EQ(asked.find("/contacts/upsert"), std::string::npos) << op << ": " << asked;
  }
}

// What else such a read answers: after an opt-in, each channel's
// dndSettings alone (the global `dnd` the opt-in leaves is no setting made
// since); its own record gone or unread, nothing (the search's copies of
// the others may be as old).
TEST(GhlClient, AReadAfterOurOptInReadsTheChannelsSettingAndNothingOfAGoneRecord) {
  enum { kThere, kGone, kUnreadable } own = kThere;
  ScriptedHttp http([&own](const HttpRequest& r) {
    if (r.url.find("/contacts/search") != std::string::npos)
      return Ok(R"({"contacts":[{"id":"g-own","dnd":true},{"id":"g-dup","dnd":true}]})");
    if (own == kUnreadable) return Ok("{}");
    if (own == kThere)
      return Ok(
          R"({"contact":{"id":"g-own","dnd":true,"dndSettings":{"SMS":{"status":"inactive"}}}})");
    HttpResponse r404;
    r404.status = 404;
    r404.body = R"({"message":"Contact not found"})";
    return r404;
  });
  auto client = NewGhlClient(GhlSettings(), &http);
  auto read = [&](const std::string& after) {
    PushRequest req = Request("read_consent", "g-own");
    req.channel = "sms";
    req.fields["phone"] = "+12055550142";
    req.fields["after"] = after;
    PushResult got;
    client->Push(req, Credentials{"tok", "", 0}, [&](PushResult r) { got = std::move(r); });
    EXPECT_EQ(got.http_status, 200) << got.detail;
    return got;
  };
  EXPECT_EQ(read("opt_out").answered["held.sms"], "out") << "DND on every channel holds it";
  EXPECT_EQ(read("opt_in").answered["held.sms"], "in") << "its SMS setting is lifted";
  for (auto unread : {kGone, kUnreadable}) {
    own = unread;
    EXPECT_EQ(read("opt_in").answered.count("held.sms"), 0u) << unread;
    EXPECT_EQ(read("opt_out").answered.count("held.sms"), 0u) << unread;
  }
}

// A text for a contact whose linked record was merged away since: the
// conversation's creation answered 400 "Contact with id ... not found" and
// the text failed at every retry, dead-lettered (a consent push used to
// relink such a contact, 7d1c261). The person's record is looked for by
// phone, as an upsert's is, and the text written there.
TEST(GhlClient, ATextForARecordMergedAwayIsWrittenToThePersonsRecord) {
  // `kept`: g-gone's old conversation survives it (the sandbox keeps it),
  // so the message's own write is what answers "not found".
  auto text = [](bool kept, const std::string& phone, std::vector<std::string>* asked) {
    ScriptedHttp http([&](const HttpRequest& r) {
      const bool gone = r.url.find("g-gone") != std::string::npos ||
                        r.body.find("\"contactId\":\"g-gone\"") != std::string::npos;
      if (r.url.find("/conversations/search") != std::string::npos)
        return Ok(!gone  ? R"({"conversations":[{"id":"conv-9"}]})"
                  : kept ? R"({"conversations":[{"id":"conv-old"}]})"
                         : R"({"conversations":[]})");
      if (r.url.find("/contacts/search/duplicate") != std::string::npos)
        return Ok(R"({"contact":{"id":"g-new"}})");
      if (!gone) return Ok(R"({"conversationId":"conv-9","messageId":"m-1"})");
      HttpResponse refused;
      refused.status = 400;
      refused.body = R"({"statusCode":400,"message":"Contact with id g-gone not found"})";
      return refused;
    });
    auto client = NewGhlClient(GhlSettings(), &http);
    PushRequest req = Request("message", "g-gone");
    req.message_key = "k-1";
    req.fields["body"] = "hello";
    if (!phone.empty()) req.fields["phone"] = phone;
    PushResult got;
    client->Push(req, Credentials{"tok", "", 0}, [&](PushResult r) { got = std::move(r); });
    *asked = http.asked;
    return got;
  };
  std::vector<std::string> asked;
  for (const bool kept : {false, true}) {
    PushResult got = text(kept, "+12055550142", &asked);
    EXPECT_EQ(got.http_status, 200) << got.detail;
    EXPECT_EQ(got.external_id, "m-1") << kept;
    ASSERT_EQ(asked.size(), 5u) << kept;
    EXPECT_EQ(
        asked[2],
        "GET http://127.0.0.1:9/contacts/search/duplicate?locationId=loc-1&number=%2B12055550142");
    EXPECT_EQ(asked[3],
              "GET http://127.0.0.1:9/conversations/search?locationId=loc-1&contactId=g-new");
    // The record found is answered, for the contact to link to it.
    EXPECT_EQ(got.answered["contact_id"], "g-new") << kept;
    EXPECT_EQ(got.answered["gone"], "g-gone") << kept;
  }
  PushResult got = text(false, "", &asked);
  EXPECT_EQ(got.http_status, 400) << "no phone or email to look for it by: refused as answered";
  EXPECT_EQ(asked.size(), 2u);
  EXPECT_TRUE(got.answered.empty());
}

// A retried text first reads the conversation's latest messages for its
// altId. A 2xx answer without a messages array ({} or null) was iterated
// as an empty simdjson array with no document: a crash of the whole
// service, again at every restart (the push re-sent, attempt 2 or more).
TEST(GhlClient, ARetriedTextReadsAnAnswerWithoutMessagesAsNoneFound) {
  for (const std::string messages :
       {"{}", R"({"messages":null})", R"({"messages":{}})", R"({"messages":{"messages":7}})"}) {
    ScriptedHttp http([&](const HttpRequest& r) {
      if (r.url.find("/conversations/search") != std::string::npos)
        return Ok(R"({"conversations":[{"id":"conv-1"}]})");
      if (r.url.find("/conversations/conv-1/messages") != std::string::npos) return Ok(messages);
      return Ok(R"({"conversationId":"conv-1","messageId":"m-9"})");
    });
    auto client = NewGhlClient(GhlSettings(), &http);
    PushRequest req = Request("message", "ghl-contact-1");
    req.message_key = "k-1";
    req.attempt = 2;
    req.fields["body"] = "hello";
    PushResult got;
    client->Push(req, Credentials{"tok", "", 0}, [&](PushResult r) { got = std::move(r); });
    EXPECT_EQ(got.http_status, 200) << messages;
    EXPECT_EQ(got.external_id, "m-9") << messages;
    ASSERT_EQ(http.asked.size(), 3u) << messages;
    EXPECT_EQ(http.asked[2], "POST http://127.0.0.1:9/conversations/messages/inbound")
        << "written, none found";
  }
}

// A campaign's call step (a dialer request) pushed to Aloware over `http`:
// the request, and what the client answered.
std::pair<PushRequest, PushResult> PushDialerRequest(HttpClient* http,
                                                     std::unique_ptr<VendorClient>* kept) {
  *kept = NewAlowareClient(
      testing::DefaultSettings("aloware", {{"api_base_url", "http://127.0.0.1:9"}}), http);
  PushRequest req;
  req.op = "send";
  req.channel = channels::kCall;
  req.fields["phone"] = "+12055550142";
  PushResult got;
  (*kept)->Push(req, Credentials{"tok", "", 0}, [&](PushResult r) { got = std::move(r); });
  return {req, got};
}

// A campaign's call step puts the person on Aloware's Power Dialer
// (add_to_powerdialer), then reads the contact's id back. That lookup
// failing (a 5xx, or a 404 while Aloware lags) retried the whole push, and
// the write again: the person queued twice, called twice if an agent had
// dialled them meanwhile. The write settles it.
TEST(AlowareClient, ADialerRequestIsNotWrittenAgainForItsLookup) {
  std::unique_ptr<VendorClient> client;
  for (int lookup : {503, 404, 200}) {  // 200: an answer with no id
    ScriptedHttp http([&](const HttpRequest& r) {
      HttpResponse a = Ok(R"({"status":"ok"})");
      if (r.url.find("/contact/phone-number") != std::string::npos) a.status = lookup;
      return a;
    });
    auto [req, got] = PushDialerRequest(&http, &client);
    EXPECT_EQ(got.http_status, 200) << "queued: settled, not retried (lookup " << lookup << ")";
    EXPECT_EQ(http.asked.size(), 2u);
    EXPECT_TRUE(client->MayApplyTwice(req)) << "a write whose answer was lost is not written again";
  }
  // One that never left (connection refused) is retried: it cannot have queued anyone.
  ScriptedHttp refused([](const HttpRequest&) {
    HttpResponse a;
    a.error = "connection refused";
    a.not_sent = true;
    return a;
  });
  auto [req, got] = PushDialerRequest(&refused, &client);
  EXPECT_TRUE(got.not_sent);
  EXPECT_EQ(got.detail, "connection refused");
}

}  // namespace
}  // namespace dfm

namespace dfm {
namespace {

// Genesys Cloud and HaloPSA grant tokens for client credentials. A grant
// stored by an earlier run is used after a restart only while the client
// it was asked with is the configured one: a new client (another org, a
// widened scope) asks for its own at once instead of pushing for up to a
// day with the old token.
TEST(ClientCredentialsGrant, AStoredGrantOfAnotherClientIsNotUsedAfterARestart) {
  SystemSettings genesys = {{"login_base_url", ""},
                            {"region", "mypurecloud.com"},
                            {"client_id", "gen-a"},
                            {"client_secret", "secret-a"}};
  Credentials granted;
  granted.access_token = "token-of-a";
  granted.expires_at_us = 1'900'000'000'000'000;
  const std::string stored = EncodeCredentials(granted, GenesysCredentials(genesys));
  EXPECT_EQ(NewestGrant(GenesysCredentials(genesys), stored).access_token, "token-of-a")
      << "the same client";
  SystemSettings other = genesys;
  other["client_secret"] = "secret-b";
  EXPECT_EQ(NewestGrant(GenesysCredentials(other), stored).access_token, "") << "a new secret";
  other = genesys;
  other["region"] = "mypurecloud.de";
  EXPECT_EQ(NewestGrant(GenesysCredentials(other), stored).access_token, "")
      << "another org's login";

  SystemSettings halo = {{"api_base_url", "https://halo.example.com/api"},
                         {"auth_url", ""},
                         {"tenant", ""},
                         {"request_timeout_ms", "5000"},
                         {"client_id", "halo-a"},
                         {"client_secret", "s"},
                         {"scope", "read:customers"}};
  const std::string halo_stored = EncodeCredentials(granted, HaloCredentials(halo));
  EXPECT_EQ(NewestGrant(HaloCredentials(halo), halo_stored).access_token, "token-of-a");
  halo["scope"] = "read:customers edit:customers";
  EXPECT_EQ(NewestGrant(HaloCredentials(halo), halo_stored).access_token, "") << "a widened scope";
}

// A configured grant without an origin (GoHighLevel's tokens) is matched
// as it always was: grants stored before keep being used.
TEST(ClientCredentialsGrant, AGrantStoredBeforeOriginsStillMatchesItsTokens) {
  Credentials configured;
  configured.access_token = "at";
  configured.refresh_token = "rt";
  const std::string before = "1900000000000000\nrefreshed\nrt2\n" + HexEncode(Sha256("at\nrt"));
  EXPECT_EQ(NewestGrant(configured, before).access_token, "refreshed");
}

}  // namespace
}  // namespace dfm
