// WebhookIngestor: every answer short of the log, without HTTP.
#include <gtest/gtest.h>

#include <array>

#include "events/webhook_received.h"
#include "http/ingest.h"
#include "tests/support/fixtures.h"
#include "util/crypto.h"

namespace dfm {
namespace {

Config MakeConfig(const Config::Env& extra = {}) {
  Config::Env env = {{"DFM_VERITY_WEBHOOK_SECRET", "vs"},
                     {"DFM_VERITY_TIMESTAMP_TOLERANCE_S", "3153600000"},  // tests run at time 0
                     {"DFM_TWILIO_AUTH_TOKEN", "tt"},
                     {"DFM_TENANTS", "acme"},
                     {"DFM_TENANTS_ACME_ALOWARE_AUTH", "bearer"},
                     {"DFM_TENANTS_ACME_ALOWARE_TOKEN", "at"},
                     {"DFM_SERVER_MAX_BODY_BYTES", "4096"},
                     {"DFM_SERVER_PUBLIC_BASE_URL", "https://public.example.com/base/"},
                     {"DFM_SERVER_TRUSTED_PROXIES", "10.0.0.1"}};
  for (const auto& [k, v] : extra) env[k] = v;
  std::vector<ConfigProblem> problems;
  Config c = Config::Load("", env, &problems);
  EXPECT_TRUE(problems.empty());
  return c;
}

class Ingest : public ::testing::Test {
 protected:
  std::optional<IngestError> Post(const std::string& target, const std::string& body,
                                  HeaderMap headers, const std::string& method = "POST") {
    headers_ = std::move(headers);
    if (!headers_.count("content-type")) headers_["content-type"] = "application/json";
    HttpRequestView v;
    v.method = method;
    v.target = target;
    v.body = body;
    v.remote_ip = [this] { return remote_; };
    v.headers = &headers_;
    out_ = PreparedWebhook();
    return ingestor_.Prepare(v, "rid-1", 0, &out_);
  }
  std::string VeritySig(const std::string& body) {
    return HexEncode(HmacKey(HmacKey::Digest::kSha256, "vs").Mac(body));
  }
  Config config_ = MakeConfig();
  WebhookIngestor ingestor_{config_};
  HeaderMap headers_;
  PreparedWebhook out_;
  std::string remote_ = "127.0.0.1";
};

TEST_F(Ingest, AcceptedWebhookBecomesDraft) {
  std::string body = testing::Fixture("verity/message.received.json");
  auto err = Post("/webhooks/verity", body,
                  {{"x-texting-signature", VeritySig(body)}, {"user-agent", "verity/1"},
                   {"authorization", "Bearer must-not-be-kept"}});
  ASSERT_FALSE(err) << err->detail;
  EXPECT_EQ(out_.tenant, "default");
  EXPECT_EQ(out_.draft.stream, "source:verity");
  EXPECT_EQ(out_.draft.type, "webhook.received");
  EXPECT_EQ(out_.draft.idempotency_system, "verity");
  EXPECT_EQ(out_.draft.idempotency_key, "message.received:msg_01JD8Z5K4N3M2P1Q0R9S8T7U6V");
  WebhookReceived w;
  ASSERT_TRUE(DecodeWebhookReceived(out_.draft.schema_version, out_.draft.payload, &w).ok());
  EXPECT_EQ(w.body, body);
  EXPECT_EQ(w.verification, "hmac-sha256");
  EXPECT_EQ(w.request_id, "rid-1");
  EXPECT_EQ(w.Header("user-agent"), "verity/1");
  EXPECT_EQ(w.Header("authorization"), "");  // credentials are never recorded
}

TEST_F(Ingest, ErrorsInOrder) {
  std::string body = testing::Fixture("verity/message.received.json");
  auto e = Post("/nope", body, {});
  EXPECT_EQ(e->status, 404);
  EXPECT_EQ(e->error, "not_found");
  e = Post("/webhooks/verity", body, {}, "GET");
  EXPECT_EQ(e->status, 405);
  // An unknown system or tenant, or one not configured, is answered as any
  // unknown path: nothing to enumerate them by (the log says which).
  for (const char* path : {"/webhooks/salesforce", "/t/ghost/webhooks/verity",
                           "/t/acme/webhooks/verity", "/nope"}) {
    e = Post(path, body, {});
    ASSERT_TRUE(e);
    EXPECT_EQ(e->status, 404) << path;
    EXPECT_EQ(e->error, "not_found") << path;
    EXPECT_EQ(e->detail, "no such endpoint") << path;
    EXPECT_FALSE(e->log_detail.empty());
  }
  EXPECT_EQ(Post("/t/ghost/webhooks/verity", body, {})->log_detail, "unknown tenant ghost");
  e = Post("/webhooks/verity", std::string(5000, 'x'), {});
  EXPECT_EQ(e->status, 413);
  e = Post("/webhooks/verity", body, {{"content-type", "text/plain"}});
  EXPECT_EQ(e->status, 415);
  e = Post("/webhooks/verity", body, {{"x-texting-signature", "00"}});
  EXPECT_EQ(e->status, 401);
  std::string bad = "{\"eventType\":";
  e = Post("/webhooks/verity", bad, {{"x-texting-signature", VeritySig(bad)}});
  EXPECT_EQ(e->status, 400);
  EXPECT_NE(e->detail.find("not valid JSON"), std::string::npos);
  std::string missing = R"({"messageId":"m1"})";
  e = Post("/webhooks/verity", missing, {{"x-texting-signature", VeritySig(missing)}});
  EXPECT_EQ(e->status, 400);
  EXPECT_NE(e->detail.find("eventType"), std::string::npos);
}

TEST_F(Ingest, NamedTenantRoute) {
  std::string body = testing::Fixture("aloware/Call-Disposed.json");
  auto e = Post("/t/acme/webhooks/aloware", body, {{"authorization", "Bearer at"}});
  ASSERT_FALSE(e) << e->detail;
  EXPECT_EQ(out_.tenant, "acme");
  EXPECT_EQ(out_.draft.tenant, "acme");
  e = Post("/t/acme/webhooks/aloware", testing::Fixture("aloware/test-ping.json"),
           {{"authorization", "Bearer at"}});
  ASSERT_FALSE(e);
  EXPECT_TRUE(out_.test_ping);
}

// One Meta app for many tenants: the notification's phone_number_id
// chooses the tenant, whichever tenant's URL it came to, and that tenant's
// own App Secret verifies it; a number no tenant has is refused and named.
TEST(IngestSharedApp, TheNumberChoosesTheTenantAndItsSecretVerifies) {
  Config::Env env = {{"DFM_TENANTS", "a,b,c"}};
  for (const auto& [t, number, secret] : std::vector<std::array<std::string, 3>>{
           {"A", "111", "one-app"}, {"B", "222", "one-app"}, {"C", "333", "own-app"}}) {
    env["DFM_TENANTS_" + t + "_WHATSAPP_APP_SECRET"] = secret;
    env["DFM_TENANTS_" + t + "_WHATSAPP_VERIFY_TOKEN"] = "vt-" + t;
    env["DFM_TENANTS_" + t + "_WHATSAPP_PHONE_NUMBER_ID"] = number;
  }
  std::vector<ConfigProblem> problems;
  Config config = Config::Load("", env, &problems);
  ASSERT_TRUE(problems.empty()) << problems[0].key << ": " << problems[0].message;
  WebhookIngestor ingestor(config);
  auto post = [&](const std::string& target, const std::string& number, const std::string& secret,
                  PreparedWebhook* out) {
    const std::string body =
        R"({"object":"whatsapp_business_account","entry":[{"id":"w","changes":[{"field":"messages","value":{"metadata":{"display_phone_number":"15550001","phone_number_id":")" +
        number + R"("},"messages":[{"from":"16505551234","id":"wamid.)" + number +
        R"(","timestamp":"1763661600","type":"text","text":{"body":"hi"}}]}}]}]})";
    HeaderMap h = {{"content-type", "application/json"},
                   {"x-hub-signature-256", "sha256=" + HexEncode(HmacKey(HmacKey::Digest::kSha256, secret).Mac(body))}};
    HttpRequestView v;
    v.method = "POST";
    v.target = target;
    v.body = body;
    v.headers = &h;
    return ingestor.Prepare(v, "rid", 0, out);
  };
  PreparedWebhook out;
  auto e = post("/t/a/webhooks/whatsapp", "222", "one-app", &out);
  ASSERT_FALSE(e) << e->detail;
  EXPECT_EQ(out.tenant, "b") << "posted to a's URL, about b's number";
  EXPECT_EQ(out.draft.tenant, "b");
  e = post("/t/b/webhooks/whatsapp", "111", "one-app", &out);
  ASSERT_FALSE(e) << e->detail;
  EXPECT_EQ(out.tenant, "a");
  e = post("/t/a/webhooks/whatsapp", "333", "one-app", &out);
  ASSERT_TRUE(e) << "c has its own app: the shared secret does not reach it";
  EXPECT_EQ(e->status, 401);
  EXPECT_EQ(e->error, "unauthorized");
  e = post("/t/a/webhooks/whatsapp", "333", "own-app", &out);
  ASSERT_FALSE(e) << e->detail;
  EXPECT_EQ(out.tenant, "c");
  e = post("/t/a/webhooks/whatsapp", "999", "one-app", &out);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 401);
  EXPECT_EQ(e->error, "unknown_account");
}

// The signed URL was rebuilt from the caller's Host and, from a trusted
// peer, its forwarded headers: both are the caller's to choose. It is the
// configured public URL now, whoever asks and however.
TEST_F(Ingest, ThePublicUrlIsTheConfiguredOneWhateverTheRequestSays) {
  HeaderMap h = {{"host", "attacker.example"},
                 {"x-forwarded-proto", "https"},
                 {"x-forwarded-host", "attacker.example"},
                 {"x-forwarded-prefix", "/x/"}};
  HttpRequestView v;
  v.target = "/webhooks/twilio?x=1";
  v.headers = &h;
  for (const char* peer : {"10.0.0.1", "10.0.0.2"}) {  // a trusted proxy, and another
    v.remote_ip = [peer] { return std::string(peer); };
    EXPECT_EQ(ingestor_.PublicUrl(v), "https://public.example.com/base/webhooks/twilio?x=1");
  }
  // So Twilio, which signs the URL, needs it.
  std::vector<ConfigProblem> problems;
  Config::Load("", {{"DFM_TWILIO_AUTH_TOKEN", "tt"}}, &problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].key, "server.public_base_url");
  EXPECT_NE(problems[0].message.find("required while twilio is enabled"), std::string::npos);
}

TEST(IngestHelpers, RoutesRequestIdsAndMediaTypes) {
  std::string t, s;
  EXPECT_TRUE(ParseWebhookRoute("/webhooks/ghl", &t, &s));
  EXPECT_EQ(t, "default");
  EXPECT_TRUE(ParseWebhookRoute("/t/acme/webhooks/ghl", &t, &s));
  EXPECT_EQ(t, "acme");
  EXPECT_EQ(s, "ghl");
  EXPECT_FALSE(ParseWebhookRoute("/webhooks/", &t, &s));
  EXPECT_FALSE(ParseWebhookRoute("/webhooks/ghl/x", &t, &s));
  EXPECT_FALSE(ParseWebhookRoute("/t/acme/hooks/ghl", &t, &s));
  EXPECT_EQ(ResolveRequestId("abc-123"), "abc-123");
  EXPECT_EQ(ResolveRequestId("bad id\n").size(), 32u);
  EXPECT_EQ(ResolveRequestId("").size(), 32u);
  EXPECT_EQ(MediaType(" Application/JSON ; charset=utf-8"), "application/json");
}

}  // namespace
}  // namespace dfm
