// GoHighLevel's API client (connectors/ghl/client.cc) against answers
// played by a scripted HttpClient: what it asks and how it reads them.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "connectors/common/http_client.h"
#include "connectors/common/outbound.h"
#include "connectors/ghl/ghl.h"

namespace dfm {
namespace {

// Answers each request at once with what `answer` says for it; keeps them.
class ScriptedHttp : public HttpClient {
 public:
  explicit ScriptedHttp(std::function<HttpResponse(const HttpRequest&)> answer) : answer_(std::move(answer)) {}
  std::vector<std::string> asked;  // "<method> <url>"
  void Send(HttpRequest req, HttpCallback cb) override {
    asked.push_back(req.method + " " + req.url);
    cb(answer_(req));
  }

 private:
  std::function<HttpResponse(const HttpRequest&)> answer_;
};

SystemSettings GhlSettings() {
  SystemSettings s;
  for (const auto& spec : GhlConnector().settings) s[spec.key] = spec.default_value;
  s["api_base_url"] = "http://127.0.0.1:9";
  s["location_id"] = "loc-1";
  s["conversation_provider_id"] = "prov-1";
  s["access_token"] = "tok";
  return s;
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
  for (const std::string messages : {"{}", R"({"messages":null})", R"({"messages":{}})", R"({"messages":{"messages":7}})"}) {
    ScriptedHttp http([&](const HttpRequest& r) {
      if (r.url.find("/conversations/search") != std::string::npos) return Ok(R"({"conversations":[{"id":"conv-1"}]})");
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
    EXPECT_EQ(http.asked[2], "POST http://127.0.0.1:9/conversations/messages/inbound") << "written, none found";
  }
}

}  // namespace
}  // namespace dfm
