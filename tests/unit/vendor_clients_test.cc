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
#include "connectors/ghl/ghl.h"
#include "sync/consent.h"
#include "tests/support/connector_settings.h"

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

HttpResponse Ok(std::string body) {
  HttpResponse r;
  r.status = 200;
  r.body = std::move(body);
  return r;
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
    PushRequest req;
    req.push_id = "p-1";
    req.contact_id = "c-1";
    req.op = "message";
    req.external_id = "ghl-contact-1";
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
