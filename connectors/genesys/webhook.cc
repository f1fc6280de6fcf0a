// Genesys Cloud Open Messaging outbound webhooks (docs/vendors/genesys.md):
// what agents send, and receipts, POSTed to the integration's
// outboundNotificationWebhookUrl.
//
// Authenticity: `X-Hub-Signature-256: sha256=<base64>`, the HMAC-SHA256 of
// the raw body keyed with the integration's
// outboundNotificationWebhookSignatureSecretToken.
//
// Tenancy: `channel.id` is the Open Messaging integration's id and must be
// the tenant's `integration_id` (401 otherwise).
//
// Provider event id: a message's `id` (Genesys's id of it); a receipt's
// "<id>:receipt:<status>" (one message gets several receipts). Source
// time: `channel.time` (ISO 8601).
//
// Answers: Genesys retries a timeout, 429 or 5xx up to 5 times; any other
// non-2xx can fail the agent's chat, so a message the sync later refuses is
// still answered 200 here and reported back as a Failed receipt.
#include "connectors/common/json_body.h"
#include "connectors/genesys/genesys.h"
#include "util/clock.h"
#include "util/crypto.h"

namespace dfm {
namespace {

class GenesysSource : public WebhookSource {
 public:
  GenesysSource(const std::string& secret, std::string integration_id)
      : key_(HmacKey::Digest::kSha256, secret), integration_id_(std::move(integration_id)) {}

  bool AcceptsContentType(std::string_view mt) const override { return mt == "application/json"; }

  Status Verify(const InboundRequest& req, std::string* scheme) const override {
    Status s = VerifyHubSignature(req, key_, DigestText::kBase64);
    if (s.ok()) *scheme = "hmac-sha256-base64";
    return s;
  }

  Status Identify(const InboundRequest& req, WebhookIdentity* id) const override {
    simdjson::dom::object obj;
    Status s = ParseJsonObject(req.body, &obj);
    if (!s.ok()) return s;
    std::string_view mid, type, integration;
    if (obj["id"].get(mid) || mid.empty()) return Status::InvalidArgument("missing string field id");
    if (obj["type"].get(type)) return Status::InvalidArgument("missing string field type");
    if (obj["channel"]["id"].get(integration))
      return Status::InvalidArgument("missing string field channel.id");
    if (!ConstantTimeEquals(integration, integration_id_))
      return Status::Unauthenticated("channel.id is not this tenant's Open Messaging integration");
    id->provider_event_id = std::string(mid);
    id->id_source = "body.id";
    if (type == "Receipt") {
      std::string_view status;
      if (obj["status"].get(status)) return Status::InvalidArgument("receipt without status");
      id->provider_event_id += ":receipt:" + std::string(status);
      id->id_source = "body.id:body.status";
    }
    std::string_view time;
    if (!obj["channel"]["time"].get(time)) {
      auto t = ParseIso8601Micros(time);
      if (!t) return Status::InvalidArgument("field channel.time is not an ISO 8601 time");
      id->source_time_us = *t;
    }
    return Status::OK();
  }

  const std::vector<std::string_view>& HeadersToRecord() const override {
    static const std::vector<std::string_view> kNames = {"x-hub-signature-256"};
    return kNames;
  }

 private:
  HmacKey key_;
  std::string integration_id_;
};

}  // namespace

std::vector<SettingSpec> GenesysWebhookSettings() {
  return {
      {"webhook_secret", true, "",
       "the integration's outboundNotificationWebhookSignatureSecretToken (X-Hub-Signature-256)"},
      {"integration_id", false, "", "the Open Messaging integration's id"},
  };
}

std::unique_ptr<WebhookSource> NewGenesysWebhookSource(const SystemSettings& s,
                                                       std::vector<SettingProblem>* problems) {
  size_t before = problems->size();
  if (s.at("webhook_secret").empty()) problems->push_back({"webhook_secret", "required"});
  if (s.at("integration_id").empty()) problems->push_back({"integration_id", "required"});
  if (problems->size() != before) return nullptr;
  return std::make_unique<GenesysSource>(s.at("webhook_secret"), s.at("integration_id"));
}

}  // namespace dfm
