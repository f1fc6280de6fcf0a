// GoHighLevel (LeadConnector) webhooks.
//
// Authenticity: `X-GHL-Signature` is an Ed25519 signature of the raw body
// (base64). When that header is absent, `X-WH-Signature` is the legacy
// RSASSA-PKCS1-v1_5 SHA-256 signature of the raw body (base64). A present
// X-GHL-Signature that is wrong, or empty, is rejected; it never falls back
// to the legacy scheme, unless no Ed25519 key is configured (an RSA-only
// tenant: the legacy header decides).
//
// Tenant: GoHighLevel signs every location's webhooks with one published
// key, so a signature proves only that GoHighLevel sent the body, not for
// whom. The body's `locationId` must be the tenant's `location_id`; a
// body without one, or with another, is refused (docs/security.md).
//
// Freshness: the body's `timestamp` must lie within `timestamp_tolerance_s`
// of now (default 300 s, as GoHighLevel's guide advises); `webhookId`s are
// de-duplicated for ever by the log. A conversation-provider delivery
// (ProviderOutboundMessage) carries neither: it is taken once per
// `messageId` (its id below, kept for ever by the log), and the sync sends
// it only for a contact the engine already knew from GoHighLevel
// (docs/sync-rules.md, "Messages and calls").
//
// Provider event id: `webhookId`. A ProviderOutboundMessage's `messageId`
// names the message to deliver, which is the fact itself, so it is the id
// ("message:<id>").
#include <fstream>
#include <sstream>

#include "connectors/common/json_body.h"
#include "connectors/ghl/ghl.h"
#include "util/clock.h"
#include "util/crypto.h"

namespace dfm {
namespace {

class GhlSource : public WebhookSource {
 public:
  GhlSource(std::unique_ptr<PublicKey> ed25519, std::unique_ptr<PublicKey> rsa,
            int64_t tolerance_s, std::string location_id)
      : ed25519_(std::move(ed25519)),
        rsa_(std::move(rsa)),
        tolerance_us_(tolerance_s * 1000000),
        location_id_(std::move(location_id)) {}

  bool AcceptsContentType(std::string_view mt) const override { return mt == "application/json"; }

  Status Verify(const InboundRequest& req, std::string* scheme) const override {
    // With no Ed25519 key configured there is nothing to downgrade from:
    // the legacy header decides when GoHighLevel sent both.
    if (req.HasHeader("x-ghl-signature") && (ed25519_ || !req.HasHeader("x-wh-signature"))) {
      std::string_view ghl = req.Header("x-ghl-signature");
      if (!ed25519_) return Status::Unauthenticated("X-GHL-Signature given but no Ed25519 key is configured");
      auto sig = Base64Decode(ghl);
      if (ghl.empty() || !sig || !ed25519_->VerifyEd25519(req.body, *sig)) {
        return Status::Unauthenticated("X-GHL-Signature does not match the body");
      }
      *scheme = "ed25519";
      return Status::OK();
    }
    if (req.HasHeader("x-wh-signature")) {
      std::string_view legacy = req.Header("x-wh-signature");
      if (!rsa_) return Status::Unauthenticated("X-WH-Signature given but no RSA key is configured");
      auto sig = Base64Decode(legacy);
      if (legacy.empty() || !sig || !rsa_->VerifyRsaSha256(req.body, *sig)) {
        return Status::Unauthenticated("X-WH-Signature does not match the body");
      }
      *scheme = "rsa-sha256";
      return Status::OK();
    }
    return Status::Unauthenticated("missing X-GHL-Signature (or legacy X-WH-Signature) header");
  }

  Status Identify(const InboundRequest& req, WebhookIdentity* id) const override {
    simdjson::dom::object obj;
    Status s = ParseJsonObject(req.body, &obj);
    if (!s.ok()) return s;
    bool wrong = false;
    // The tenant first: a body of another location is refused whatever else it holds.
    auto location = StringOrNumberField(obj, "locationId", &wrong);
    if (!location || location->empty()) {
      return Status::Unauthenticated("body has no locationId: it cannot be bound to this tenant");
    }
    if (!ConstantTimeEquals(*location, location_id_)) {
      return Status::Unauthenticated("locationId is not this tenant's GoHighLevel location");
    }
    auto webhook_id = StringOrNumberField(obj, "webhookId", &wrong);
    if (wrong) return Status::InvalidArgument("field webhookId must be a string");
    auto ts = StringOrNumberField(obj, "timestamp", &wrong);
    if (wrong) return Status::InvalidArgument("field timestamp must be a string");
    if (webhook_id) {
      if (webhook_id->empty()) return Status::InvalidArgument("field webhookId is empty");
      if (!ts) return Status::InvalidArgument("missing field timestamp");
      id->provider_event_id = *webhook_id;
      id->id_source = "body.webhookId";
    } else {
      // Only a provider's delivery goes without a webhookId (its `type` is
      // its channel): any other body would escape the timestamp window.
      auto message_id = StringOrNumberField(obj, "messageId", &wrong);
      auto type = StringOrNumberField(obj, "type", &wrong);
      const bool delivery = type && (*type == "SMS" || *type == "Email");
      if (!message_id || message_id->empty() || !delivery) {
        return Status::InvalidArgument("missing field webhookId");
      }
      id->provider_event_id = "message:" + *message_id;
      id->id_source = "body.messageId";
    }
    if (ts) {
      auto t = ParseIso8601Micros(*ts);
      if (!t) return Status::InvalidArgument("field timestamp is not an ISO 8601 time");
      int64_t skew = req.now_us - *t;
      if (skew > tolerance_us_ || -skew > tolerance_us_) {
        return Status::Unauthenticated("timestamp is outside the accepted window");
      }
      id->source_time_us = *t;
    }
    return Status::OK();
  }

  const std::vector<std::string_view>& HeadersToRecord() const override {
    static const std::vector<std::string_view> kNames = {"x-ghl-signature", "x-wh-signature"};
    return kNames;
  }

  // GoHighLevel retries only on 429.
  int UnavailableStatus() const override { return 429; }

 private:
  std::unique_ptr<PublicKey> ed25519_;
  std::unique_ptr<PublicKey> rsa_;
  int64_t tolerance_us_;
  std::string location_id_;
};

std::unique_ptr<PublicKey> LoadKey(const SystemSettings& s, const std::string& name,
                                   bool want_ed25519, std::vector<SettingProblem>* problems) {
  std::string pem;
  auto inline_it = s.find(name);
  auto file_it = s.find(name + "_file");
  if (inline_it != s.end() && !inline_it->second.empty()) {
    pem = inline_it->second;
  } else if (file_it != s.end() && !file_it->second.empty()) {
    std::ifstream in(file_it->second);
    if (!in) {
      problems->push_back({name + "_file", "cannot read " + file_it->second});
      return nullptr;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    pem = ss.str();
  } else {
    return nullptr;
  }
  std::string err;
  auto key = PublicKey::FromPem(pem, &err);
  std::string key_name = inline_it != s.end() && !inline_it->second.empty() ? name : name + "_file";
  if (!key) {
    problems->push_back({key_name, err});
    return nullptr;
  }
  if (want_ed25519 ? !key->IsEd25519() : !key->IsRsa()) {
    problems->push_back({key_name, want_ed25519 ? "not an Ed25519 public key" : "not an RSA public key"});
    return nullptr;
  }
  return key;
}

}  // namespace

std::vector<SettingSpec> GhlWebhookSettings() {
  return {
      {"ed25519_public_key", false, "", "PEM of GoHighLevel's Ed25519 webhook public key"},
      {"ed25519_public_key_file", false, "", "file holding that PEM (instead of the key itself)"},
      {"rsa_public_key", false, "", "PEM of the legacy RSA key (X-WH-Signature)"},
      {"rsa_public_key_file", false, "", "file holding that PEM"},
      {"timestamp_tolerance_s", false, "300", "largest accepted |now - body.timestamp|, seconds"},
  };
}

std::unique_ptr<WebhookSource> NewGhlWebhookSource(const SystemSettings& s,
                                                   std::vector<SettingProblem>* problems) {
  size_t before = problems->size();
  auto ed = LoadKey(s, "ed25519_public_key", true, problems);
  auto rsa = LoadKey(s, "rsa_public_key", false, problems);
  if (!ed && !rsa && problems->size() == before) {
    problems->push_back({"ed25519_public_key", "set ed25519_public_key or rsa_public_key"});
  }
  const int64_t tol = PositiveSeconds(s, "timestamp_tolerance_s", problems);
  // The outbound connector's key, which the webhooks are bound to too.
  auto loc = s.find("location_id");
  std::string location = loc == s.end() ? "" : loc->second;
  if (location.empty()) {
    problems->push_back({"location_id",
                         "required: GoHighLevel signs every location's webhooks with one key, "
                         "so only the location binds them to this tenant"});
  }
  if (problems->size() != before) return nullptr;
  return std::make_unique<GhlSource>(std::move(ed), std::move(rsa), tol, std::move(location));
}

}  // namespace dfm
