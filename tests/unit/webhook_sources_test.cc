// Each vendor's verification and provider event ids: known-answer vectors
// from the vendors' documents, and signatures made here with our own keys.
#include <gtest/gtest.h>

#include "connectors/connector.h"
#include "tests/support/fixtures.h"
#include "util/clock.h"
#include "util/crypto.h"

namespace dfm {
namespace {

using testing::Fixture;
using Headers = std::map<std::string, std::string, std::less<>>;

// The GoHighLevel location of the fixtures' bodies.
constexpr char kFixtureLocation[] = "ve9EPM428h8vShlRW1KT";

std::unique_ptr<WebhookSource> Make(const std::string& system, SystemSettings s,
                                    std::vector<SettingProblem>* problems = nullptr) {
  const Connector* c = FindConnector(system);
  for (const auto& spec : c->settings) s.emplace(spec.key, spec.default_value);
  std::vector<SettingProblem> local;
  return c->webhook_source(s, problems ? problems : &local);
}

struct Req {
  Headers headers;
  std::string body, target = "/webhooks/x", content_type = "application/json", url;
  int64_t now_us = 0;
  InboundRequest Get() const {
    InboundRequest r;
    r.target = target;
    r.content_type = content_type;
    r.body = body;
    r.headers = &headers;
    r.public_url = url;
    r.now_us = now_us;
    return r;
  }
};

std::string Hmac(HmacKey::Digest d, const std::string& key, const std::string& data) {
  return HmacKey(d, key).Mac(data);
}

// --- known-answer vectors ------------------------------------------------

TEST(KnownAnswer, MetaHmacSha256Hex) {
  EXPECT_EQ(HexEncode(Hmac(HmacKey::Digest::kSha256, "secret", "test")),
            "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914");
}

TEST(KnownAnswer, StandardWebhooksSignature) {
  auto key = Base64Decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(key.has_value());
  std::string signed_content = "msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}";
  EXPECT_EQ(Base64Encode(Hmac(HmacKey::Digest::kSha256, *key, signed_content)),
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

// Verity's scheme (hex HMAC-SHA256 of the raw body) is Meta's: the Meta
// vector, through Verity's own verification.
TEST(KnownAnswer, VerityVerifiesTheMetaVector) {
  auto src = Make("verity", {{"webhook_secret", "secret"}});
  ASSERT_TRUE(src);
  Req r;
  r.body = "test";
  r.headers["x-texting-signature"] =
      "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914";
  std::string scheme;
  EXPECT_TRUE(src->Verify(r.Get(), &scheme).ok());
  r.body = "tesT";
  EXPECT_EQ(src->Verify(r.Get(), &scheme).code(), Status::Code::kUnauthenticated);
}

// RFC 8032, section 7.1, TESTs 1 and 2: the Ed25519 verification GoHighLevel's
// X-GHL-Signature goes through (PublicKey, from a SubjectPublicKeyInfo PEM).
TEST(KnownAnswer, Ed25519Rfc8032Vectors) {
  struct Vector {
    const char* public_key;
    const char* message;
    const char* signature;
  };
  const Vector vectors[] = {
      {"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
       "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf"
       "9b46bd25bf5f0595bbe24655141438e7a100b"},
      {"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
       "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f"
       "11d8c387b2eaeb4302aeeb00d291612bb0c00"},
  };
  for (const auto& v : vectors) {
    // SubjectPublicKeyInfo: the Ed25519 algorithm identifier, then the key.
    auto spki = HexDecode(std::string("302a300506032b6570032100") + v.public_key);
    auto message = HexDecode(v.message);
    auto signature = HexDecode(v.signature);
    ASSERT_TRUE(spki && message && signature);
    std::string pem =
        "-----BEGIN PUBLIC KEY-----\n" + Base64Encode(*spki) + "\n-----END PUBLIC KEY-----\n";
    std::string error;
    auto key = PublicKey::FromPem(pem, &error);
    ASSERT_TRUE(key) << error;
    ASSERT_TRUE(key->IsEd25519());
    EXPECT_TRUE(key->VerifyEd25519(*message, *signature)) << v.public_key;
    std::string flipped = *signature;
    flipped[0] ^= 1;
    EXPECT_FALSE(key->VerifyEd25519(*message, flipped));
    EXPECT_FALSE(key->VerifyEd25519(*message + "x", *signature));
  }
}

// GoHighLevel's legacy X-WH-Signature (RSASSA-PKCS1-v1_5, SHA-256, base64)
// over the ContactCreate fixture, made outside OpenSSL, which dfm verifies
// with: s = EM^d mod n by the textbook formula (RFC 8017, 8.2.1 and 9.2)
// in Python, with a 2048-bit key generated for this test (its public half
// below). Checked through the GoHighLevel source, as a webhook arrives.
TEST(KnownAnswer, GhlLegacyRsaVector) {
  const std::string pem =
      "-----BEGIN PUBLIC KEY-----\n"
      "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwTBcaHom6LkUfeDxVARH\n"
      "AareU34cjnqJ6BDBp8lUt49VEkkk/YSJkcQN+jy8mZ2b6RWUdEK1wEaZopzgB3RM\n"
      "6IdDGs6mbnYpohBlj9t9Zncp/xqC2OVVHGK5iENpsEpMwXHDMSwuWPmWScgdnd6q\n"
      "fMq7z5N8e+NwN5xnRgnyNOSfGEvH/1H9qjY+p8HTT76/AqzNhwyNDm2ocgffM4UH\n"
      "/lRBw8KJgsa86hQkujWek/+rK4snFii5iTZ4Qogl5uS0guhlWn8rPzMy7TEPgMjN\n"
      "Ldez/B8SxdPUfapNk1Da8YwSXNnII24CR/Bp5Nb6cM/ARZj7/lt2Zkzfm6jgseBQ\n"
      "6QIDAQAB\n"
      "-----END PUBLIC KEY-----\n";
  const std::string signature =
      "cJDM7SrwsHUM5HqmIGxqyeHuDG+azW4JwTAdFt4cgxxRPnmnLzyElSnaMpDZaAY8GsEDLsk6loDB"
      "GbVuUO+4LdW6Na0HqqQRYAbx2kbypGYNIOblzpU3MqO7VGsBqSFJRcs/gq6N1d3nxPyAil+7t7qZ"
      "HecdAPz7J1DKvQUVGCIYY9kNnUic13GZcCx5dpZ6ZoMJ8ZaGWq+2V42iu7OVyp2pme5aEWgFKELH"
      "+MT/5HyjnB+gxoCvjp/ofbjgxBE3lomGY4HHSCA7wQaQrK5MmLNe+ElFyNvstOuTPSnPjcM02B87"
      "8OJSKNtMhFKOYwTLW8UfJ/gRzHOSI9HN5gKfvA==";
  std::string error;
  auto key = PublicKey::FromPem(pem, &error);
  ASSERT_TRUE(key) << error;
  auto raw = Base64Decode(signature);
  ASSERT_TRUE(raw);
  const std::string body = Fixture("ghl/ContactCreate.json");
  EXPECT_TRUE(key->VerifyRsaSha256(body, *raw));
  EXPECT_FALSE(key->VerifyRsaSha256(body + " ", *raw));

  auto src = Make("ghl", {{"rsa_public_key", pem}, {"location_id", kFixtureLocation}});
  ASSERT_TRUE(src);
  Req r;
  r.body = body;
  r.now_us = *ParseIso8601Micros("2026-11-20T15:05:05Z");  // within the body's timestamp window
  r.headers["x-wh-signature"] = signature;
  std::string scheme;
  ASSERT_TRUE(src->Verify(r.Get(), &scheme).ok());
  EXPECT_EQ(scheme, "rsa-sha256");
  WebhookIdentity id;
  EXPECT_TRUE(src->Identify(r.Get(), &id).ok());  // and taken, as a webhook arriving then
  EXPECT_EQ(id.provider_event_id, "9a0c1e52-6f1d-4c38-9d0e-5b0f3e2a7c11");
  // GoHighLevel sends both headers now: with no Ed25519 key configured
  // (nothing to downgrade from) the legacy one decides; every webhook was
  // refused 401 before, which GoHighLevel does not retry.
  r.headers["x-ghl-signature"] = "c2lnbmVkIGJ5IGEga2V5IHdlIGRvIG5vdCBob2xk";
  ASSERT_TRUE(src->Verify(r.Get(), &scheme).ok());
  EXPECT_EQ(scheme, "rsa-sha256");
  r.body[10] ^= 1;
  EXPECT_EQ(src->Verify(r.Get(), &scheme).code(), Status::Code::kUnauthenticated);
  r.headers.erase("x-wh-signature");
  EXPECT_EQ(src->Verify(r.Get(), &scheme).message(),
            "X-GHL-Signature given but no Ed25519 key is configured");
}

TEST(KnownAnswer, TwilioDocumentedVector) {
  auto src = Make("twilio", {{"auth_token", "12345"}});
  ASSERT_TRUE(src);
  Req r;
  r.content_type = "application/x-www-form-urlencoded";
  r.url = "https://mycompany.com/myapp.php?foo=1&bar=2";
  r.body = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
  r.headers["x-twilio-signature"] = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
  std::string scheme;
  EXPECT_TRUE(src->Verify(r.Get(), &scheme).ok());
  EXPECT_EQ(scheme, "hmac-sha1");
  r.body += "&Extra=1";
  EXPECT_EQ(src->Verify(r.Get(), &scheme).code(), Status::Code::kUnauthenticated);
}

// --- Verity ----------------------------------------------------------------

TEST(Verity, HexHmacOfRawBody) {
  auto src = Make("verity", {{"webhook_secret", "s3cret"}});
  Req r;
  r.body = Fixture("verity/message.received.json");
  std::string hex = HexEncode(Hmac(HmacKey::Digest::kSha256, "s3cret", r.body));
  r.headers["x-texting-signature"] = hex;
  std::string scheme;
  EXPECT_TRUE(src->Verify(r.Get(), &scheme).ok());
  for (auto& c : hex) c = static_cast<char>(toupper(c));
  r.headers["x-texting-signature"] = hex;
  EXPECT_TRUE(src->Verify(r.Get(), &scheme).ok()) << "upper-case hex";
  r.body += " ";
  EXPECT_FALSE(src->Verify(r.Get(), &scheme).ok()) << "a changed body";
  r.headers.erase("x-texting-signature");
  Status s = src->Verify(r.Get(), &scheme);
  EXPECT_NE(s.message().find("missing X-Texting-Signature"), std::string::npos);
  r.headers["x-texting-signature"] = "zz";
  EXPECT_FALSE(src->Verify(r.Get(), &scheme).ok());
  r.headers["x-texting-signature"] = "";  // present, and wrong
  EXPECT_NE(src->Verify(r.Get(), &scheme).message().find("does not match"), std::string::npos);
}

// Issue 47: a webhook secret rotated with the old one kept as
// webhook_secret_previous: the vendor's webhooks signed with either are
// taken (the current tried first), a third is not; the overlap ends when
// the previous one is removed.
TEST(Verity, BothSecretsAreTakenDuringARotation) {
  const Connector* c = FindConnector("verity");
  SystemSettings s;
  for (const auto& spec : c->settings) s.emplace(spec.key, spec.default_value);
  ASSERT_TRUE(s.count("webhook_secret_previous")) << "the registry adds the setting";
  s["webhook_secret"] = "new-secret";
  s["webhook_secret_previous"] = "old-secret";
  std::vector<SettingProblem> problems;
  auto src = MakeWebhookSource(*c, s, &problems);
  ASSERT_TRUE(src);
  Req r;
  r.body = Fixture("verity/message.received.json");
  std::string scheme;
  r.headers["x-texting-signature"] = HexEncode(Hmac(HmacKey::Digest::kSha256, "new-secret", r.body));
  ASSERT_TRUE(src->Verify(r.Get(), &scheme).ok());
  EXPECT_EQ(scheme.find("previous"), std::string::npos);
  r.headers["x-texting-signature"] = HexEncode(Hmac(HmacKey::Digest::kSha256, "old-secret", r.body));
  ASSERT_TRUE(src->Verify(r.Get(), &scheme).ok());
  EXPECT_NE(scheme.find("previous-secret"), std::string::npos) << scheme;
  r.headers["x-texting-signature"] = HexEncode(Hmac(HmacKey::Digest::kSha256, "other", r.body));
  Status refused = src->Verify(r.Get(), &scheme);
  EXPECT_NE(refused.message().find("does not match"), std::string::npos) << "the current secret's answer";
  s["webhook_secret_previous"] = "";
  r.headers["x-texting-signature"] = HexEncode(Hmac(HmacKey::Digest::kSha256, "old-secret", r.body));
  EXPECT_FALSE(MakeWebhookSource(*c, s, &problems)->Verify(r.Get(), &scheme).ok());
}

TEST(Verity, ProviderEventIdSeparatesEventsOfOneMessage) {
  auto src = Make("verity", {{"webhook_secret", "s"}});
  Req stop, optout;
  stop.body = Fixture("verity/message.stop.json");
  optout.body = Fixture("verity/optout.stop.json");
  stop.now_us = optout.now_us = *ParseIso8601Micros("2026-11-20T18:06:00Z");  // as it arrives
  WebhookIdentity a, b;
  ASSERT_TRUE(src->Identify(stop.Get(), &a).ok());
  ASSERT_TRUE(src->Identify(optout.Get(), &b).ok());
  EXPECT_EQ(a.provider_event_id, "message.received:msg_01JD8Z7A1B2C3D4E5F6G7H8J9K");
  EXPECT_EQ(b.provider_event_id, "optout.stop:msg_01JD8Z7A1B2C3D4E5F6G7H8J9K");
  EXPECT_EQ(a.source_time_us, ParseIso8601Micros("2026-11-20T18:05:00.000Z"));
  Req with_id;
  with_id.body = R"({"eventId":"evt_9","eventType":"message.sent","messageId":"m"})";
  ASSERT_TRUE(src->Identify(with_id.Get(), &a).ok());
  EXPECT_EQ(a.provider_event_id, "evt_9");
  Req bad;
  bad.body = R"({"eventType":"message.sent"})";
  EXPECT_NE(src->Identify(bad.Get(), &a).message().find("messageId"), std::string::npos);
  bad.body = R"({"eventType": "message.sent", )";
  EXPECT_NE(src->Identify(bad.Get(), &a).message().find("not valid JSON"), std::string::npos);
}

// Verity signs its event's time: a body is taken within a day of it, either
// way (its queue arrives late after an outage; replays are stopped by the
// event id for ever).
TEST(Verity, TimestampWindow) {
  auto src = Make("verity", {{"webhook_secret", "s"}});
  Req r;
  r.body = Fixture("verity/message.received.json");
  const int64_t t = *ParseIso8601Micros("2026-11-20T18:01:02Z");
  WebhookIdentity id;
  for (int64_t offset_s : {-86400, 0, 86400}) {
    r.now_us = t + offset_s * 1000000;
    EXPECT_TRUE(src->Identify(r.Get(), &id).ok()) << offset_s;
  }
  for (int64_t offset_s : {-86401, 86401}) {
    r.now_us = t + offset_s * 1000000;
    Status s = src->Identify(r.Get(), &id);
    EXPECT_EQ(s.code(), Status::Code::kUnauthenticated) << offset_s;
    EXPECT_NE(s.message().find("window"), std::string::npos);
  }
  auto tight = Make("verity", {{"webhook_secret", "s"}, {"timestamp_tolerance_s", "300"}});
  r.now_us = t + 301 * 1000000LL;
  EXPECT_EQ(tight->Identify(r.Get(), &id).code(), Status::Code::kUnauthenticated);
}

// --- GoHighLevel ---------------------------------------------------------

class Ghl : public ::testing::Test {
 protected:
  void SetUp() override {
    ed_ = PrivateKey::GenerateEd25519();
    rsa_ = PrivateKey::GenerateRsa(2048);
    src_ = Make("ghl", {{"ed25519_public_key", ed_->PublicPem()},
                        {"rsa_public_key", rsa_->PublicPem()},
                        {"location_id", kFixtureLocation}});
    ASSERT_TRUE(src_);
    r_.body = Fixture("ghl/ContactCreate.json");
    r_.now_us = *ParseIso8601Micros("2026-11-20T15:05:05Z");  // a minute after the body's timestamp
  }
  std::unique_ptr<PrivateKey> ed_, rsa_;
  std::unique_ptr<WebhookSource> src_;
  Req r_;
  std::string scheme_;
};

TEST_F(Ghl, Ed25519SignatureOverRawBody) {
  r_.headers["x-ghl-signature"] = Base64Encode(ed_->Sign(r_.body));
  ASSERT_TRUE(src_->Verify(r_.Get(), &scheme_).ok());
  EXPECT_EQ(scheme_, "ed25519");
  r_.body[10] ^= 1;
  EXPECT_FALSE(src_->Verify(r_.Get(), &scheme_).ok());
}

TEST_F(Ghl, LegacyRsaSignatureWhenEd25519HeaderAbsent) {
  r_.headers["x-wh-signature"] = Base64Encode(rsa_->Sign(r_.body));
  ASSERT_TRUE(src_->Verify(r_.Get(), &scheme_).ok());
  EXPECT_EQ(scheme_, "rsa-sha256");
}

TEST_F(Ghl, WrongEd25519IsNotRescuedByLegacyHeader) {
  auto other = PrivateKey::GenerateEd25519();
  r_.headers["x-ghl-signature"] = Base64Encode(other->Sign(r_.body));
  r_.headers["x-wh-signature"] = Base64Encode(rsa_->Sign(r_.body));
  EXPECT_EQ(src_->Verify(r_.Get(), &scheme_).code(), Status::Code::kUnauthenticated);
}

TEST_F(Ghl, MissingSignature) {
  EXPECT_NE(src_->Verify(r_.Get(), &scheme_).message().find("missing X-GHL-Signature"),
            std::string::npos);
}

// An empty X-GHL-Signature is a wrong one: it does not hand the request to
// the legacy scheme (a downgrade to a key the sender may hold).
TEST_F(Ghl, AnEmptySignatureHeaderIsPresentAndWrong) {
  r_.headers["x-ghl-signature"] = "";
  r_.headers["x-wh-signature"] = Base64Encode(rsa_->Sign(r_.body));
  Status s = src_->Verify(r_.Get(), &scheme_);
  EXPECT_EQ(s.code(), Status::Code::kUnauthenticated);
  EXPECT_NE(s.message().find("X-GHL-Signature does not match"), std::string::npos) << s.message();
  r_.headers.erase("x-ghl-signature");
  r_.headers["x-wh-signature"] = "";
  EXPECT_NE(src_->Verify(r_.Get(), &scheme_).message().find("X-WH-Signature does not match"),
            std::string::npos);
}

TEST_F(Ghl, WebhookIdAndTimestampWindow) {
  WebhookIdentity id;
  ASSERT_TRUE(src_->Identify(r_.Get(), &id).ok());
  EXPECT_EQ(id.provider_event_id, "9a0c1e52-6f1d-4c38-9d0e-5b0f3e2a7c11");
  EXPECT_EQ(id.id_source, "body.webhookId");
  EXPECT_EQ(id.source_time_us, ParseIso8601Micros("2026-11-20T15:04:05.123Z"));
  const int64_t sent = *ParseIso8601Micros("2026-11-20T15:04:05.123Z");
  r_.now_us = sent + int64_t{299} * 1000000;  // inside the default 5-minute window
  EXPECT_TRUE(src_->Identify(r_.Get(), &id).ok());
  r_.now_us = sent + int64_t{301} * 1000000;  // past it
  Status s = src_->Identify(r_.Get(), &id);
  EXPECT_EQ(s.code(), Status::Code::kUnauthenticated);
  EXPECT_NE(s.message().find("window"), std::string::npos);
  r_.now_us = sent - int64_t{301} * 1000000;  // from the future, as far
  EXPECT_EQ(src_->Identify(r_.Get(), &id).code(), Status::Code::kUnauthenticated);
}

// The attack: GoHighLevel signs every location's webhooks with one key, so
// a body signed for the attacker's own location verifies. Its locationId
// is not this tenant's: refused, with a timestamp or without (a provider
// delivery has none), and so is a body that names no location.
TEST_F(Ghl, ABodyOfAnotherLocationIsRefused) {
  WebhookIdentity id;
  for (const char* name : {"ghl/ContactCreate.json", "ghl/ProviderOutboundMessage.json"}) {
    std::string body = Fixture(name);
    const size_t at = body.find(kFixtureLocation);
    ASSERT_NE(at, std::string::npos);
    r_.body = body;
    r_.body.replace(at, std::string(kFixtureLocation).size(), "attackersOwnLocation");
    r_.headers["x-ghl-signature"] = Base64Encode(ed_->Sign(r_.body));
    ASSERT_TRUE(src_->Verify(r_.Get(), &scheme_).ok()) << "GoHighLevel's signature is genuine";
    Status s = src_->Identify(r_.Get(), &id);
    EXPECT_EQ(s.code(), Status::Code::kUnauthenticated) << name;
    EXPECT_EQ(s.message(), "locationId is not this tenant's GoHighLevel location");
    r_.body = body;
    r_.body.replace(at - std::string("\"locationId\":\"").size(),
                    std::string("\"locationId\":\"").size() +
                        std::string(kFixtureLocation).size() + 2,
                    "");
    ASSERT_EQ(r_.body.find("locationId"), std::string::npos) << r_.body;
    s = src_->Identify(r_.Get(), &id);
    EXPECT_EQ(s.code(), Status::Code::kUnauthenticated) << name;
    EXPECT_NE(s.message().find("no locationId"), std::string::npos);
  }
}

TEST_F(Ghl, ProviderOutboundMessageUsesMessageId) {
  r_.body = Fixture("ghl/ProviderOutboundMessage.json");
  WebhookIdentity id;
  ASSERT_TRUE(src_->Identify(r_.Get(), &id).ok());
  EXPECT_EQ(id.provider_event_id, "message:qW2eR4tY6uI8oP0aS1dF");
}

TEST_F(Ghl, MissingFields) {
  WebhookIdentity id;
  // Only a provider's delivery (type SMS or Email) goes without webhookId
  // and timestamp: an InboundMessage with a messageId escaped the window,
  // replayable at any age (its START or STOP applied again).
  r_.body = R"({"type":"InboundMessage","locationId":"ve9EPM428h8vShlRW1KT","messageId":"m1",)"
            R"("messageType":"SMS","direction":"inbound","body":"START"})";
  EXPECT_EQ(src_->Identify(r_.Get(), &id).message(), "missing field webhookId");
  r_.body = R"({"type":"ContactCreate","locationId":"ve9EPM428h8vShlRW1KT",)"
            R"("timestamp":"2026-11-20T15:04:05Z"})";
  EXPECT_EQ(src_->Identify(r_.Get(), &id).message(), "missing field webhookId");
  r_.body = R"({"type":"ContactCreate","locationId":"ve9EPM428h8vShlRW1KT","webhookId":"w1"})";
  EXPECT_EQ(src_->Identify(r_.Get(), &id).message(), "missing field timestamp");
  r_.body = R"({"locationId":"ve9EPM428h8vShlRW1KT","webhookId":"w1","timestamp":"yesterday"})";
  EXPECT_EQ(src_->Identify(r_.Get(), &id).code(), Status::Code::kInvalidArgument);
}

TEST(GhlSettings, RejectsWrongKeyKinds) {
  auto rsa = PrivateKey::GenerateRsa(2048);
  std::vector<SettingProblem> problems;
  EXPECT_FALSE(
      Make("ghl", {{"ed25519_public_key", rsa->PublicPem()}, {"location_id", "l1"}}, &problems));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].key, "ed25519_public_key");
  problems.clear();
  EXPECT_FALSE(Make("ghl", {{"location_id", "l1"}}, &problems));
  EXPECT_FALSE(problems.empty());
}

TEST(GhlSettings, TheLocationIsRequired) {
  auto ed = PrivateKey::GenerateEd25519();
  std::vector<SettingProblem> problems;
  EXPECT_FALSE(Make("ghl", {{"ed25519_public_key", ed->PublicPem()}}, &problems));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].key, "location_id");
}

// --- Aloware ---------------------------------------------------------------

TEST(Aloware, AuthorizationModes) {
  std::string scheme;
  Req r;
  r.body = Fixture("aloware/Call-Disposed.json");
  auto none = Make("aloware", {{"auth", "none"}, {"allow_unauthenticated", "true"}});
  EXPECT_TRUE(none->Verify(r.Get(), &scheme).ok());
  EXPECT_EQ(scheme, "none");

  auto bearer = Make("aloware", {{"auth", "bearer"}, {"token", "tok"}});
  EXPECT_FALSE(bearer->Verify(r.Get(), &scheme).ok());
  r.headers["authorization"] = "Bearer tok";
  EXPECT_TRUE(bearer->Verify(r.Get(), &scheme).ok());
  r.headers["authorization"] = "Bearer tok2";
  EXPECT_FALSE(bearer->Verify(r.Get(), &scheme).ok());

  auto basic = Make("aloware", {{"auth", "basic"}, {"username", "u"}, {"password", "p"}});
  r.headers["authorization"] = "Basic " + Base64Encode("u:p");
  EXPECT_TRUE(basic->Verify(r.Get(), &scheme).ok());
  EXPECT_EQ(scheme, "basic");
  r.headers["authorization"] = "Basic " + Base64Encode("u:x");
  EXPECT_FALSE(basic->Verify(r.Get(), &scheme).ok());

  std::vector<SettingProblem> problems;
  EXPECT_FALSE(Make("aloware", {{"auth", "basic"}}, &problems));
  EXPECT_EQ(problems.size(), 2u);
}

// auth = none took webhooks from anyone, silently.
TEST(Aloware, NoAuthenticationOnlyWhenTheOperatorSaysSo) {
  std::vector<SettingProblem> problems;
  EXPECT_FALSE(Make("aloware", {{"auth", "none"}}, &problems));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].key, "auth");
  EXPECT_NE(problems[0].message.find("allow_unauthenticated"), std::string::npos);
  // And an empty Authorization header is one, and wrong.
  auto bearer = Make("aloware", {{"auth", "bearer"}, {"token", "tok"}});
  Req r;
  r.body = Fixture("aloware/Call-Disposed.json");
  r.headers["authorization"] = "";
  std::string scheme;
  EXPECT_NE(bearer->Verify(r.Get(), &scheme).message().find("does not match"), std::string::npos);
}

TEST(Aloware, DerivedIdsAndTestPing) {
  auto src = Make("aloware",
                  {{"auth", "none"}, {"allow_unauthenticated", "true"}, {"utc_offset", "-05:00"}});
  Req r;
  WebhookIdentity id;
  r.body = Fixture("aloware/Call-Disposed.json");
  ASSERT_TRUE(src->Identify(r.Get(), &id).ok());
  EXPECT_EQ(id.provider_event_id, "Call-Disposed:940868616:2026-11-20 21:00:06");
  EXPECT_EQ(id.source_time_us, ParseIso8601Micros("2026-11-21T02:00:06Z"));
  r.body = Fixture("aloware/InboundPhoneCall-DispositionMissed.json");  // ids as strings
  ASSERT_TRUE(src->Identify(r.Get(), &id).ok());
  EXPECT_EQ(id.provider_event_id, "InboundPhoneCall-DispositionMissed:940868777:2026-11-20 21:05:28");
  r.body = Fixture("aloware/test-ping.json");
  ASSERT_TRUE(src->Identify(r.Get(), &id).ok());
  EXPECT_TRUE(id.is_test_ping);
  r.body = R"({"event":"Call-Disposed","body":{}})";
  EXPECT_EQ(src->Identify(r.Get(), &id).message(), "missing field body.id");
}

// --- Twilio ----------------------------------------------------------------

class Twilio : public ::testing::Test {
 protected:
  std::string Sign(const std::string& url, const std::string& form) {
    auto params = ParseForm(form).value();
    std::sort(params.begin(), params.end());
    std::string data = url;
    for (auto& [k, v] : params) data += k + v;
    return Base64Encode(Hmac(HmacKey::Digest::kSha1, "tok", data));
  }
  std::unique_ptr<WebhookSource> src_ = Make("twilio", {{"auth_token", "tok"}});
  std::string scheme_;
};

TEST_F(Twilio, FormSignatureAndIds) {
  Req r;
  r.content_type = "application/x-www-form-urlencoded";
  r.body = Fixture("twilio/inbound-sms.form");
  r.url = "https://hooks.example.com/webhooks/twilio";
  r.headers["x-twilio-signature"] = Sign(r.url, r.body);
  EXPECT_TRUE(src_->Verify(r.Get(), &scheme_).ok());
  WebhookIdentity id;
  ASSERT_TRUE(src_->Identify(r.Get(), &id).ok());
  EXPECT_EQ(id.provider_event_id, "SMaa11bb22cc33dd44ee55ff6677889900:received");
  r.body = Fixture("twilio/status-callback.form");
  ASSERT_TRUE(src_->Identify(r.Get(), &id).ok());
  EXPECT_EQ(id.provider_event_id, "SMbb22cc33dd44ee55ff66778899001122:delivered");
}

// The idempotency token header is not signed: whatever it says, one signed
// form is one fact.
TEST_F(Twilio, TheUnsignedIdempotencyTokenNamesNothing) {
  Req r;
  r.content_type = "application/x-www-form-urlencoded";
  r.body = Fixture("twilio/inbound-sms.form");
  WebhookIdentity id;
  for (const char* forged : {"tok-1", "tok-2", "tok-3"}) {
    r.headers["i-twilio-idempotency-token"] = forged;
    ASSERT_TRUE(src_->Identify(r.Get(), &id).ok());
    EXPECT_EQ(id.provider_event_id, "SMaa11bb22cc33dd44ee55ff6677889900:received");
    EXPECT_EQ(id.id_source, "form.MessageSid:form.SmsStatus");
  }
}

TEST_F(Twilio, AnEmptySignatureIsPresentAndWrong) {
  Req r;
  r.content_type = "application/x-www-form-urlencoded";
  r.body = Fixture("twilio/inbound-sms.form");
  r.url = "https://hooks.example.com/webhooks/twilio";
  r.headers["x-twilio-signature"] = "";
  EXPECT_NE(src_->Verify(r.Get(), &scheme_).message().find("does not match"), std::string::npos);
}

TEST_F(Twilio, UrlMatchesWithOrWithoutDefaultPort) {
  Req r;
  r.content_type = "application/x-www-form-urlencoded";
  r.body = Fixture("twilio/inbound-sms-stop.form");
  r.url = "https://hooks.example.com/webhooks/twilio";
  r.headers["x-twilio-signature"] = Sign("https://hooks.example.com:443/webhooks/twilio", r.body);
  EXPECT_TRUE(src_->Verify(r.Get(), &scheme_).ok());
  r.url = "https://other.example.com/webhooks/twilio";
  EXPECT_FALSE(src_->Verify(r.Get(), &scheme_).ok()) << "another host is another URL";
}

TEST_F(Twilio, JsonBodySha256Variant) {
  Req r;
  r.body = R"({"sid":"EV1","data":{}})";
  auto d = Sha256(r.body);
  std::string hash = HexEncode(std::string_view(reinterpret_cast<const char*>(d.data()), 32));
  r.url = "https://hooks.example.com/webhooks/twilio?bodySHA256=" + hash;
  r.headers["x-twilio-signature"] = Base64Encode(Hmac(HmacKey::Digest::kSha1, "tok", r.url));
  ASSERT_TRUE(src_->Verify(r.Get(), &scheme_).ok());
  EXPECT_EQ(scheme_, "hmac-sha1-body-sha256");
  r.body = R"({"sid":"EV2","data":{}})";  // URL still signed, body swapped
  EXPECT_NE(src_->Verify(r.Get(), &scheme_).message().find("bodySHA256"), std::string::npos);
  WebhookIdentity id;
  r.headers["i-twilio-idempotency-token"] = "idem-1";  // not signed: not the id
  ASSERT_TRUE(src_->Identify(r.Get(), &id).ok());
  EXPECT_EQ(id.provider_event_id, "body-sha256:" + HexEncode(Sha256(r.body)));
  r.body = "[1";
  EXPECT_EQ(src_->Identify(r.Get(), &id).code(), Status::Code::kInvalidArgument);
}

TEST(Form, ParsesAndDecodes) {
  auto f = ParseForm("a=1&b=x+y&c=%2B1&d=&e");
  ASSERT_TRUE(f.has_value());
  ASSERT_EQ(f->size(), 5u);
  EXPECT_EQ((*f)[1].second, "x y");
  EXPECT_EQ((*f)[2].second, "+1");
  EXPECT_EQ((*f)[4].first, "e");
  EXPECT_FALSE(ParseForm("a=%zz").has_value());
}

}  // namespace
}  // namespace dfm
