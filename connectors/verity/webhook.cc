// Verity (in-house texting over Telnyx) webhooks; contract in docs/verity.md.
//
// Authenticity: `X-Texting-Signature` is the hex HMAC-SHA256 of the raw body
// keyed with the shared secret (either case of hex digits is accepted).
//
// Freshness: the body's `timestamp` (signed with it) must lie within
// `timestamp_tolerance_s` of now, 24 h by default. Not GoHighLevel's five
// minutes: Verity's `timestamp` is when the event happened, and it delivers
// one event at a time and resends the same bytes until answered 2xx, so
// after an outage of the service its queue arrives late, and a 4xx is final
// for Verity (docs/verity.md): a short window would drop them. Replays are
// stopped by the event id, de-duplicated for ever by the log.
//
// Provider event id: `eventId` when the body has one; otherwise
// "<eventType>:<messageId>" (conversation.created: "<eventType>:<conversationId>").
// One message produces several events (message.received then optout.stop,
// message.sent then message.delivered), so the message id alone is not enough.
#include "connectors/verity/verity.h"

#include "connectors/common/json_body.h"
#include "util/clock.h"
#include "util/crypto.h"

namespace dfm {
namespace {

class VeritySource : public WebhookSource {
 public:
  VeritySource(const std::string& secret, int64_t tolerance_s)
      : key_(HmacKey::Digest::kSha256, secret), tolerance_us_(tolerance_s * 1000000) {}

  bool AcceptsContentType(std::string_view mt) const override { return mt == "application/json"; }

  Status Verify(const InboundRequest& req, std::string* scheme) const override {
    if (!req.HasHeader("x-texting-signature"))
      return Status::Unauthenticated("missing X-Texting-Signature header");
    std::string_view hex = req.Header("x-texting-signature");
    auto got = HexDecode(hex);
    if (hex.empty() || !got || !ConstantTimeEquals(*got, key_.Mac(req.body))) {
      return Status::Unauthenticated("X-Texting-Signature does not match the body");
    }
    *scheme = "hmac-sha256";
    return Status::OK();
  }

  Status Identify(const InboundRequest& req, WebhookIdentity* id) const override {
    simdjson::dom::object obj;
    Status s = ParseJsonObject(req.body, &obj);
    if (!s.ok()) return s;
    bool wrong = false;
    auto type = StringOrNumberField(obj, "eventType", &wrong);
    if (!type || type->empty()) return Status::InvalidArgument("missing string field eventType");
    auto event_id = StringOrNumberField(obj, "eventId", &wrong);
    if (event_id && !event_id->empty()) {
      id->provider_event_id = *event_id;
      id->id_source = "body.eventId";
    } else {
      const char* field = *type == "conversation.created" ? "conversationId" : "messageId";
      auto subject = StringOrNumberField(obj, field, &wrong);
      if (!subject || subject->empty()) {
        return Status::InvalidArgument(std::string("missing field ") + field);
      }
      id->provider_event_id = *type + ":" + *subject;
      id->id_source = std::string("body.eventType:body.") + field;
    }
    if (auto ts = StringOrNumberField(obj, "timestamp", &wrong)) {
      auto t = ParseIso8601Micros(*ts);
      if (!t) return Status::InvalidArgument("field timestamp is not an ISO 8601 time");
      const int64_t skew = req.now_us - *t;
      if (skew > tolerance_us_ || -skew > tolerance_us_)
        return Status::Unauthenticated("timestamp is outside the accepted window");
      id->source_time_us = *t;
    }
    return Status::OK();
  }

  const std::vector<std::string_view>& HeadersToRecord() const override {
    static const std::vector<std::string_view> kNames = {"x-texting-signature"};
    return kNames;
  }

 private:
  HmacKey key_;
  int64_t tolerance_us_;
};

}  // namespace

std::vector<SettingSpec> VerityWebhookSettings() {
  return {
      {"webhook_secret", true, "", "shared secret of X-Texting-Signature"},
      {"timestamp_tolerance_s", false, "86400", "largest accepted |now - body.timestamp|, seconds",
       true},
  };
}

std::unique_ptr<WebhookSource> NewVerityWebhookSource(const SystemSettings& s,
                                                      std::vector<SettingProblem>* problems) {
  size_t before = problems->size();
  if (s.at("webhook_secret").empty()) problems->push_back({"webhook_secret", "required"});
  const int64_t tol = PositiveSeconds(s, "timestamp_tolerance_s", problems);
  if (problems->size() != before) return nullptr;
  return std::make_unique<VeritySource>(s.at("webhook_secret"), tol);
}

}  // namespace dfm
