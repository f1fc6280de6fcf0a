// WhatsApp Cloud API and Genesys Open Messaging (docs/vendors/whatsapp.md,
// genesys.md): signatures (Meta's known vector; Genesys's base64 form),
// tenancy checks, Meta's GET handshake, the mappers, the error classes, and
// the contact model's decisions between them (a customer's text to the
// agent, the agent's reply to the customer, statuses both ways, the
// whatsapp channel's consent).
#include <gtest/gtest.h>

#include "config/config.h"
#include "connectors/genesys/genesys.h"
#include "connectors/whatsapp/whatsapp.h"
#include "sync/contact_model.h"
#include "tests/support/bridge_context.h"
#include "tests/support/connector_settings.h"
#include "tests/support/fixtures.h"
#include "tests/support/mapper_input.h"
#include "tests/support/one_answer_http.h"
#include "util/crypto.h"

namespace dfm {
namespace {

using testing::UsSettings;
using testing::Webhook;

const char kNumberId[] = "106540352242922";

const char kMessage[] =
    R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.A1","timestamp":"1763661600","type":"text","text":{"body":"Does it come in another color?"}}]}}]}]})";

std::string WithText(const std::string& text) {
  std::string b = kMessage;
  const std::string old = "Does it come in another color?";
  return b.replace(b.find(old), old.size(), text);
}

struct Request {
  std::map<std::string, std::string, std::less<>> headers;
  InboundRequest in;
  explicit Request(std::string_view body, std::string_view target = "/t/north/webhooks/whatsapp") {
    in.body = body;
    in.target = target;
    in.content_type = "application/json";
    in.headers = &headers;
  }
};

std::unique_ptr<WebhookSource> WhatsAppSource(const std::string& secret) {
  SystemSettings s = {{"app_secret", secret}, {"verify_token", "vt-1"}, {"phone_number_id", kNumberId}};
  std::vector<SettingProblem> problems;
  auto src = NewWhatsAppWebhookSource(s, &problems);
  EXPECT_TRUE(problems.empty());
  return src;
}

TEST(WhatsAppWebhook, MetasKnownVectorAndTheRawBody) {
  auto src = WhatsAppSource("secret");
  Request r("test");
  std::string scheme;
  r.headers["x-hub-signature-256"] = "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914";
  EXPECT_TRUE(src->Verify(r.in, &scheme).ok());
  EXPECT_EQ(scheme, "hmac-sha256");
  r.headers["x-hub-signature-256"] = "sha256=0329A06B62CD16B33EB6792BE8C60B158D89A2EE3A876FCE9A881EBB488C0914";
  EXPECT_TRUE(src->Verify(r.in, &scheme).ok()) << "hex in either case";
  r.headers["x-hub-signature-256"] = "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914";
  EXPECT_TRUE(src->Verify(r.in, &scheme).code() == Status::Code::kUnauthenticated) << "without sha256=";
  r.headers["x-hub-signature-256"] = "sha256=1329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914";
  EXPECT_TRUE(src->Verify(r.in, &scheme).code() == Status::Code::kUnauthenticated);
  r.headers.clear();
  EXPECT_TRUE(src->Verify(r.in, &scheme).code() == Status::Code::kUnauthenticated);
  // Another tenant's app secret never verifies this tenant's body.
  Request other(kMessage);
  other.headers["x-hub-signature-256"] =
      "sha256=" + HexEncode(HmacKey(HmacKey::Digest::kSha256, "other").Mac(kMessage));
  EXPECT_TRUE(WhatsAppSource("secret")->Verify(other.in, &scheme).code() == Status::Code::kUnauthenticated);
}

TEST(WhatsAppWebhook, IdentifiesItemsAndRefusesAnotherTenantsNumber) {
  auto src = WhatsAppSource("secret");
  const std::string fixture = testing::Fixture("whatsapp/message.json");
  ASSERT_FALSE(fixture.empty());
  Request r(fixture);
  WebhookIdentity id;
  ASSERT_TRUE(src->Identify(r.in, &id).ok());
  EXPECT_EQ(id.provider_event_id, "m:wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=");
  EXPECT_EQ(*id.source_time_us, 1763661600LL * 1000000);
  std::string other = fixture;
  other.replace(other.find(kNumberId), std::string(kNumberId).size(), "999");
  Request r2(other);
  Status s = src->Identify(r2.in, &id);
  EXPECT_TRUE(s.code() == Status::Code::kUnauthenticated);
  EXPECT_NE(s.message().find("not this tenant's"), std::string::npos);
  Request r3(R"({"object":"page","entry":[]})");
  EXPECT_TRUE(src->Identify(r3.in, &id).IsInvalidArgument());
  const std::string statuses =
      R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.B","status":"delivered","timestamp":"1763661601","recipient_id":"16505551234"}]}}]}]})";
  Request r4(statuses);
  ASSERT_TRUE(src->Identify(r4.in, &id).ok());
  EXPECT_EQ(id.provider_event_id, "s:wamid.B:delivered");
}

// Template, account and quality notifications name no number: they were
// answered 400, which Meta retries for days. Acknowledged, kept by no
// tenant; a change with items must still name its number.
TEST(WhatsAppWebhook, AnAccountNotificationIsAcknowledgedAndNotKept) {
  auto src = WhatsAppSource("secret");
  Request r(
      R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","time":1763661600,)"
      R"("changes":[{"field":"message_template_status_update","value":{"event":"APPROVED",)"
      R"("message_template_id":1,"message_template_name":"order_ready","message_template_language":"en_US",)"
      R"("reason":"NONE"}}]}]})");
  WebhookIdentity id;
  ASSERT_TRUE(src->Identify(r.in, &id).ok());
  EXPECT_TRUE(id.is_test_ping) << "acknowledged, not recorded";
  Request items(
      R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",)"
      R"("value":{"messages":[{"from":"16505551234","id":"wamid.C","timestamp":"1763661600"}]}}]}]})");
  EXPECT_EQ(src->Identify(items.in, &id).message(),
            "change without value.metadata.phone_number_id");
  id = WebhookIdentity{};
  Request mine(kMessage);
  ASSERT_TRUE(src->Identify(mine.in, &id).ok());
  EXPECT_FALSE(id.is_test_ping);
  // An account change first, a number's after: the number chooses the
  // tenant (the first change alone chose none, and the URL's tenant refused it).
  std::string mixed = kMessage;
  mixed.replace(mixed.find("\"changes\":[") + 11, 0,
                R"({"field":"account_update","value":{"event":"VERIFIED_ACCOUNT"}},)");
  EXPECT_EQ(src->TenantKey(mixed), std::optional<std::string>(kNumberId));
  Request both(mixed);
  ASSERT_TRUE(src->Identify(both.in, &id).ok());
  EXPECT_EQ(id.provider_event_id, "m:wamid.A1");
}

TEST(WhatsAppWebhook, AnswersMetasHandshake) {
  auto src = WhatsAppSource("secret");
  Request ok("", "/t/north/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=vt-1");
  auto a = src->Handshake(ok.in);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, "1158201444");
  Request bad("", "/t/north/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1&hub.verify_token=vt-2");
  EXPECT_EQ(src->Handshake(bad.in)->status, 403);
  Request mode("", "/t/north/webhooks/whatsapp?hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=vt-1");
  EXPECT_EQ(src->Handshake(mode.in)->status, 403);
}

TEST(WhatsAppMapper, TextsMediaStatusesAndConsentOnTheWhatsAppChannel) {
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapWhatsAppWebhook(Webhook("whatsapp", kMessage), UsSettings(), &facts).ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].fields.at("phone"), "+16505551234");
  ASSERT_EQ(facts[0].activities.size(), 1u);
  const Activity& a = facts[0].activities[0];
  EXPECT_EQ(a.kind, Activity::Kind::kText);
  EXPECT_EQ(a.channel, "whatsapp");
  EXPECT_EQ(a.direction, "inbound");
  EXPECT_EQ(a.body, "Does it come in another color?");
  EXPECT_EQ(a.our_number, "+15550783881");
  EXPECT_TRUE(facts[0].consents.empty());

  facts.clear();
  ASSERT_TRUE(MapWhatsAppWebhook(Webhook("whatsapp", WithText("Stop.")), UsSettings(), &facts).ok());
  ASSERT_EQ(facts[0].consents.size(), 1u);
  EXPECT_EQ(facts[0].consents[0].change, Consent::Change::kOptOut);
  EXPECT_EQ(facts[0].consents[0].channels, std::vector<std::string>{"whatsapp"}) << "never sms";

  facts.clear();
  std::string image = kMessage;
  const std::string text = R"("type":"text","text":{"body":"Does it come in another color?"})";
  image.replace(image.find(text), text.size(),
                R"("type":"image","image":{"caption":"this one","mime_type":"image/jpeg","sha256":"x","id":"1003383421387256"})");
  ASSERT_TRUE(MapWhatsAppWebhook(Webhook("whatsapp", image), UsSettings(), &facts).ok());
  EXPECT_EQ(facts[0].activities[0].body, "this one");
  EXPECT_EQ(facts[0].activities[0].media, "image image/jpeg wa-media:1003383421387256");

  facts.clear();
  std::string location = kMessage;
  location.replace(location.find(text), text.size(), R"("type":"location","location":{"latitude":1})");
  ASSERT_TRUE(MapWhatsAppWebhook(Webhook("whatsapp", location), UsSettings(), &facts).ok());
  EXPECT_EQ(facts[0].activities[0].body, "[WhatsApp location message]") << "reported, not dropped";

  facts.clear();
  ASSERT_TRUE(MapWhatsAppWebhook(Webhook("whatsapp", R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"display_phone_number":"15550783881","phone_number_id":"1"},"statuses":[{"id":"wamid.B","status":"failed","timestamp":"1763661601","recipient_id":"16505551234","biz_opaque_callback_data":"genesys:g1","errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message"}]}]}}]}]})"),
                                 UsSettings(), &facts)
                  .ok());
  const Activity& st = facts[0].activities[0];
  EXPECT_EQ(st.kind, Activity::Kind::kStatus);
  EXPECT_EQ(st.status, "failed");
  EXPECT_EQ(st.message_key, "genesys:g1");
  EXPECT_EQ(st.error, "131047: Re-engagement message");

  facts.clear();
  ASSERT_TRUE(MapWhatsAppWebhook(Webhook("whatsapp", R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"user_preferences","value":{"metadata":{"phone_number_id":"1"},"user_preferences":[{"wa_id":"16505551234","detail":"User requested to stop marketing messages","category":"marketing_messages","value":"stop","timestamp":1731705721}]}}]}]})"),
                                 UsSettings(), &facts)
                  .ok());
  ASSERT_EQ(facts[0].consents.size(), 1u);
  EXPECT_EQ(facts[0].consents[0].reason, "user_preferences stop");
  EXPECT_EQ(facts[0].source_time_us, 1731705721LL * 1000000) << "an integer timestamp";
}

TEST(WhatsAppMapper, ImplausibleTimestampsReadAsUnknown) {
  EXPECT_EQ(WhatsAppSeconds(1763661600), 1763661600);
  EXPECT_EQ(WhatsAppSeconds(1763661595551234), 0) << "µs would overflow";
  EXPECT_EQ(WhatsAppSeconds(-5), 0);
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapWhatsAppWebhook(Webhook("whatsapp", R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"1"},"messages":[{"from":"16505551234","id":"w","timestamp":"99999999999999999","type":"text","text":{"body":"x"}}]}}]}]})"),
                                 UsSettings(), &facts)
                  .ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].source_time_us, 0);
}

TEST(WhatsAppClient, ErrorsAreReadByCode) {
  EXPECT_EQ(WhatsAppErrorClass(131056), 0);
  EXPECT_EQ(WhatsAppErrorClass(130429), 0);
  EXPECT_EQ(WhatsAppErrorClass(131000), 1);
  EXPECT_EQ(WhatsAppErrorClass(190), 3);
  EXPECT_EQ(WhatsAppErrorClass(131047), 2) << "outside the window: never retried";
  EXPECT_EQ(WhatsAppErrorClass(131026), 2);
}

// How a refused send is read: a pair limit is one person's (that message
// waits alone; a 429 held the tenant's whole connector, up to 68 minutes),
// and an answer without Meta's error code (a proxy's 429 or 408) is read
// by its status, not as code 0, a refused token (a dead letter).
TEST(WhatsAppClient, ARefusalIsReadByItsCodeOrElseItsStatus) {
  testing::OneAnswerHttp http;
  auto client = NewWhatsAppClient(
      testing::DefaultSettings(
          "whatsapp", {{"phone_number_id", kNumberId}, {"api_base_url", "http://127.0.0.1:9"}}),
      &http);
  auto answer = [&](int status, const std::string& body, int attempt = 1,
                    const std::string& retry_after = "") {
    http.answer = HttpResponse{};
    http.answer.status = status;
    http.answer.body = body;
    if (!retry_after.empty()) http.answer.headers["retry-after"] = retry_after;
    PushRequest req;
    req.op = "send";
    req.attempt = attempt;
    req.fields = {{"phone", "+16505551234"}, {"body", "hi"}};
    PushResult got;
    client->Push(req, Credentials{"tok", "", 0}, [&](PushResult r) { got = std::move(r); });
    return got;
  };
  PushResult pair = answer(400, R"({"error":{"code":131056,"message":"pair rate limit"}})", 2);
  EXPECT_NE(pair.http_status, 429) << "not the connector's limit";
  EXPECT_TRUE(pair.transient) << "retried, this message alone";
  EXPECT_EQ(pair.retry_after_us, std::optional<int64_t>(16'000'000)) << "4^attempt s";
  PushResult number = answer(400, R"({"error":{"code":130429,"message":"throughput"}})");
  EXPECT_EQ(number.http_status, 429) << "the number's limit: the connector waits";
  for (int status : {429, 408, 503}) {
    PushResult bare = answer(status, "<html>busy</html>");
    EXPECT_EQ(bare.http_status, status);
    EXPECT_FALSE(bare.auth_rejected) << status;
    EXPECT_FALSE(bare.not_done) << status << ": a gateway's may hide a text Meta sent";
  }
  // Meta's "unavailable" says the text was not taken; its "unknown error"
  // and a gateway's 502 or 504 do not.
  EXPECT_TRUE(answer(503, R"({"error":{"code":131016,"message":"unavailable"}})").not_done);
  EXPECT_TRUE(answer(500, R"({"error":{"code":2,"message":"service"}})").not_done);
  EXPECT_FALSE(answer(500, R"({"error":{"code":131000,"message":"went wrong"}})").not_done);
  EXPECT_FALSE(answer(504, "<html>gateway timeout</html>").not_done);
  EXPECT_FALSE(answer(502, "").not_done);
  // Retry-After is read on any refusal, not with Meta's throughput codes alone.
  EXPECT_EQ(answer(429, "<html>busy</html>", 1, "120").retry_after_us,
            std::optional<int64_t>(120'000'000));
  EXPECT_EQ(answer(400, R"({"error":{"code":131056,"message":"pair rate limit"}})", 2, "120")
                .retry_after_us,
            std::optional<int64_t>(120'000'000))
      << "the header wins over 4^attempt";
  EXPECT_TRUE(answer(401, R"({"error":{"code":190,"message":"expired"}})").auth_rejected);
  EXPECT_TRUE(answer(400, R"({"error":{"code":0,"message":"AuthException"}})").auth_rejected);
  PushResult gone = answer(400, R"({"error":{"code":131026,"message":"undeliverable"}})");
  EXPECT_EQ(gone.http_status, 400);
  EXPECT_FALSE(gone.transient);
}

// A text WhatsApp refused is told to Genesys as a Failed receipt whose
// reason code says why: a block (130403) and an opt-out alike are the
// recipient's opt-out, whichever report of the text's end comes first.
TEST(GenesysClient, AFailedReceiptNamesTheReasonByItsCode) {
  testing::OneAnswerHttp http;
  http.answer.status = 202;
  auto client = NewGenesysClient(testing::DefaultSettings("genesys", {{"integration_id", "int-1"},
                                                                      {"api_base_url", "http://127.0.0.1:9"}}),
                                 &http);
  for (const auto& [error, code] :
       {std::pair{"whatsapp did not send it: HTTP 400: 130403: This business has blocked the end user",
                  "RecipientOptedOut"},
        std::pair{"recipient opted out at whatsapp", "RecipientOptedOut"},
        std::pair{"whatsapp did not send it: HTTP 400: 131047: Re-engagement message", "MessageExpired"},
        std::pair{"timed out", "GeneralError"}}) {
    PushRequest req;
    req.op = "message_status";
    req.fields = {{"phone", "+16505551234"}, {"message_id", "m-1"}, {"status", "failed"}, {"error", error}};
    client->Push(req, Credentials{"tok", "", 0}, [](PushResult) {});
    EXPECT_NE(http.sent.body.find(std::string(R"("code":")") + code + "\""), std::string::npos)
        << error << " -> " << http.sent.body;
  }
}

std::unique_ptr<WebhookSource> GenesysSource() {
  SystemSettings s = {{"webhook_secret", "gsecret"}, {"integration_id", "int-1"}};
  std::vector<SettingProblem> problems;
  auto src = NewGenesysWebhookSource(s, &problems);
  EXPECT_TRUE(problems.empty());
  return src;
}

const char kAgentText[] =
    R"({"id":"8085cb","channel":{"id":"int-1","platform":"Open","type":"Private","to":{"id":"16505551234","idType":"Phone"},"from":{"id":"int-1","idType":"Opaque"},"time":"2026-03-25T13:20:05.493Z","messageId":"8085cb"},"type":"Text","text":"Yes, in blue.","originatingEntity":"Human","direction":"Outbound","conversationId":"c-1"})";

TEST(GenesysWebhook, Base64SignatureAndTheTenantsIntegration) {
  auto src = GenesysSource();
  Request r(kAgentText, "/t/north/webhooks/genesys");
  std::string mac = HmacKey(HmacKey::Digest::kSha256, "gsecret").Mac(kAgentText);
  r.headers["x-hub-signature-256"] = "sha256=" + Base64Encode(mac);
  std::string scheme;
  EXPECT_TRUE(src->Verify(r.in, &scheme).ok());
  r.headers["x-hub-signature-256"] = "sha256=" + HexEncode(mac);
  EXPECT_TRUE(src->Verify(r.in, &scheme).code() == Status::Code::kUnauthenticated) << "hex is Meta's form, not Genesys's";
  WebhookIdentity id;
  ASSERT_TRUE(src->Identify(r.in, &id).ok());
  EXPECT_EQ(id.provider_event_id, "8085cb");
  std::string other = kAgentText;
  other.replace(other.find("\"id\":\"int-1\""), 12, "\"id\":\"int-2\"");
  Request r2(other, "/t/north/webhooks/genesys");
  EXPECT_TRUE(src->Identify(r2.in, &id).code() == Status::Code::kUnauthenticated);
}

TEST(GenesysMapper, AnAgentsReplyIsASendAReceiptAStatus) {
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapGenesysWebhook(Webhook("genesys", kAgentText), UsSettings(), &facts).ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].fields.at("phone"), "+16505551234");
  EXPECT_EQ(facts[0].external_id, "16505551234");
  const Activity& a = facts[0].activities[0];
  EXPECT_EQ(a.kind, Activity::Kind::kSend);
  EXPECT_EQ(a.channel, "whatsapp");
  EXPECT_EQ(a.body, "Yes, in blue.");
  facts.clear();
  ASSERT_TRUE(MapGenesysWebhook(Webhook("genesys", R"({"id":"m2","channel":{"id":"int-1","to":{"id":"16505551234"},"time":"2026-03-25T13:20:05.493Z"},"type":"Text","direction":"Outbound","content":[{"contentType":"Attachment","attachment":{"mediaType":"Image","url":"https://x/y.png","mime":"image/png"}}]})"),
                                UsSettings(), &facts)
                  .ok());
  EXPECT_EQ(facts[0].activities[0].media, "image image/png https://x/y.png");
  facts.clear();
  ASSERT_TRUE(MapGenesysWebhook(Webhook("genesys", R"({"id":"m3","channel":{"id":"int-1","to":{"id":"16505551234"},"time":"2026-03-25T13:20:05.493Z"},"type":"Receipt","status":"Read","direction":"Inbound"})"),
                                UsSettings(), &facts)
                  .ok());
  EXPECT_EQ(facts[0].activities[0].kind, Activity::Kind::kStatus);
  EXPECT_EQ(facts[0].activities[0].status, "read");
  facts.clear();
  ASSERT_TRUE(MapGenesysWebhook(Webhook("genesys", R"({"id":"e1","channel":{"id":"int-1","to":{"id":"16505551234"}},"type":"Event","direction":"Outbound"})"),
                                UsSettings(), &facts)
                  .ok());
  EXPECT_TRUE(facts.empty()) << "typing events carry no facts";
}

// The model between them: conversations = genesys, sender = whatsapp.
class BridgeModelTest : public ::testing::Test {
 protected:
  BridgeModelTest() : ctx_(testing::BridgeContext()) { state_.contact_id = "c1"; }
  std::vector<DomainEvent> Step(const std::string& system, const std::string& body) {
    std::vector<ContactFact> facts;
    Status s = system == "whatsapp" ? MapWhatsAppWebhook(Webhook(system, body), UsSettings(), &facts)
                                    : MapGenesysWebhook(Webhook(system, body), UsSettings(), &facts);
    EXPECT_TRUE(s.ok()) << s.ToString();
    std::vector<DomainEvent> all;
    for (auto& f : facts) {
      f.webhook_seq = ++webhook_seq_;
      auto es = Decide(state_, f, ctx_);
      for (const auto& e : es) Apply(&state_, e, ++seq_, ctx_.now_us);
      all.insert(all.end(), es.begin(), es.end());
    }
    return all;
  }
  void Succeed(const DomainEvent& push, const std::string& id) {
    DomainEvent ok = push;
    ok.type = std::string(ev::kPushSucceeded);
    ok.external_id = id;
    Apply(&state_, ok, ++seq_, ctx_.now_us);
  }
  static std::vector<DomainEvent> Of(const std::vector<DomainEvent>& es, std::string_view type,
                                     std::string_view op = "") {
    std::vector<DomainEvent> out;
    for (const auto& e : es)
      if (e.type == type && (op.empty() || e.op == op)) out.push_back(e);
    return out;
  }
  SyncContext ctx_;
  ContactState state_;
  uint64_t seq_ = 0, webhook_seq_ = 100;
};

TEST_F(BridgeModelTest, ACustomersTextGoesToTheAgentAndTheReplyBack) {
  // Before the engine opened a conversation there, an agent's reply is refused.
  auto early = Step("genesys", kAgentText);
  ASSERT_EQ(Of(early, ev::kMessageRefused).size(), 1u);
  EXPECT_TRUE(Of(early, ev::kPushRequested, "send").empty());
  auto es = Step("whatsapp", kMessage);
  EXPECT_TRUE(Of(es, ev::kPushRequested, "upsert").empty()) << "they hold no contacts";
  auto record = Of(es, ev::kPushRequested, "message");
  ASSERT_EQ(record.size(), 1u);
  EXPECT_EQ(record[0].system, "genesys");
  EXPECT_EQ(record[0].channel, "whatsapp");
  EXPECT_EQ(record[0].fields.at("phone"), "+16505551234");
  EXPECT_EQ(record[0].message_key, "whatsapp:wamid.A1");
  // A reply that comes while the customer's text is on its way to Genesys
  // (a bot answers before our push's answer arrives) is sent.
  std::string second = kAgentText;
  second.replace(second.find("8085cb"), 6, "8085cc");
  auto reply = Step("genesys", second);
  auto send = Of(reply, ev::kPushRequested, "send");
  ASSERT_EQ(send.size(), 1u);
  Succeed(record[0], "g-in-1");
  EXPECT_EQ(send[0].system, "whatsapp");
  EXPECT_EQ(send[0].channel, "whatsapp");
  Succeed(send[0], "wamid.OUT");
  // WhatsApp's failed status reaches Genesys with the vendor's reason.
  auto failed = Step("whatsapp", R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"1"},"statuses":[{"id":"wamid.OUT","status":"failed","timestamp":"1763661700","recipient_id":"16505551234","errors":[{"code":131047,"title":"Re-engagement message"}]}]}}]}]})");
  auto told = Of(failed, ev::kPushRequested, "message_status");
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].system, "genesys");
  EXPECT_EQ(told[0].fields.at("message_id"), "8085cc");
  EXPECT_EQ(told[0].fields.at("status"), "failed");
  EXPECT_EQ(told[0].fields.at("error"), "131047: Re-engagement message");
  ASSERT_EQ(Of(failed, ev::kMessageStatus).size(), 1u);
  EXPECT_EQ(Of(failed, ev::kMessageStatus)[0].reason, "131047: Re-engagement message");
  // Genesys read the customer's message: WhatsApp is told (a read receipt).
  auto read = Step("genesys", R"({"id":"g-in-1","channel":{"id":"int-1","to":{"id":"16505551234"},"time":"2026-03-25T13:20:06.000Z"},"type":"Receipt","status":"Read","direction":"Inbound"})");
  auto receipt = Of(read, ev::kPushRequested, "message_status");
  ASSERT_EQ(receipt.size(), 1u);
  EXPECT_EQ(receipt[0].system, "whatsapp");
  EXPECT_EQ(receipt[0].fields.at("message_id"), "wamid.A1");
  EXPECT_EQ(receipt[0].fields.at("status"), "read");
}

TEST_F(BridgeModelTest, AWhatsAppStopRefusesTheNextReplyOnlyOnWhatsApp) {
  auto es = Step("whatsapp", kMessage);
  Succeed(Of(es, ev::kPushRequested, "message")[0], "g-in-1");
  std::string stop = WithText("STOP");
  stop.replace(stop.find("wamid.A1"), 8, "wamid.A2");
  auto opted = Step("whatsapp", stop);
  auto out = Of(opted, ev::kOptedOut);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].channel, "whatsapp");
  EXPECT_FALSE(IsOptedOut(state_, "sms"));
  auto reply = Step("genesys", kAgentText);
  auto refused = Of(reply, ev::kMessageRefused);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].channel, "whatsapp");
  EXPECT_NE(refused[0].reason.find("whatsapp opted out"), std::string::npos);
  auto told = Of(reply, ev::kPushRequested, "message_status");
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].fields.at("status"), "failed");
  EXPECT_TRUE(Of(reply, ev::kPushRequested, "send").empty());
}

TEST(BridgeConfig, TheRolesAndTargetsATenantGets) {
  std::vector<ConfigProblem> problems;
  Config c = Config::Load("", {{"DFM_TENANTS", "north"},
                               {"DFM_TENANTS_NORTH_ROLES_CONVERSATIONS", "genesys"},
                               {"DFM_TENANTS_NORTH_ROLES_SENDER", "whatsapp"},
                               {"DFM_TENANTS_NORTH_WHATSAPP_APP_SECRET", "a"},
                               {"DFM_TENANTS_NORTH_WHATSAPP_VERIFY_TOKEN", "v"},
                               {"DFM_TENANTS_NORTH_WHATSAPP_PHONE_NUMBER_ID", "1"},
                               {"DFM_TENANTS_NORTH_WHATSAPP_ACCESS_TOKEN", "t"},
                               {"DFM_TENANTS_NORTH_GENESYS_WEBHOOK_SECRET", "w"},
                               {"DFM_TENANTS_NORTH_GENESYS_INTEGRATION_ID", "i"},
                               {"DFM_TENANTS_NORTH_GENESYS_CLIENT_ID", "c"},
                               {"DFM_TENANTS_NORTH_GENESYS_CLIENT_SECRET", "s"}},
                          &problems);
  for (const auto& p : problems) EXPECT_FALSE(p.error) << p.key << ": " << p.message;
  SyncContext ctx = SyncContextFor(c, "north");
  EXPECT_EQ(ctx.conversations, "genesys");
  EXPECT_EQ(ctx.sender, "whatsapp");
  EXPECT_EQ(ctx.messages_only, (std::set<std::string>{"genesys", "whatsapp"}));
  EXPECT_EQ(ctx.takes_receipts, (std::set<std::string>{"whatsapp"}));
}

}  // namespace
}  // namespace dfm
