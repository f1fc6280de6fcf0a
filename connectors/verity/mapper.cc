// Verity webhooks -> facts (docs/verity.md).
//
// Only what bears on consent is read here so far: an inbound
// `message.received` whose text is an opt-out or opt-in word (or contains
// one: flagged for review), and `optout.stop` (Verity's own opt-out
// detection). The sender's phone (`from`) identifies the contact; the
// message id is the cause recorded in the opt-out registry. Other event
// types and ordinary texts carry no facts.
#include "connectors/common/json_body.h"
#include "connectors/common/mapper.h"
#include "sync/consent.h"
#include "util/clock.h"

namespace dfm {

Status MapVerityWebhook(const WebhookReceived& w, const MapperSettings& s,
                        std::vector<ContactFact>* out) {
  simdjson::dom::object obj;
  Status st = ParseJsonObject(w.body, &obj);
  if (!st.ok()) return Status::InvalidArgument(st.message());
  bool wrong = false;
  auto type = StringOrNumberField(obj, "eventType", &wrong);
  if (!type) return Status::InvalidArgument("Verity webhook without an \"eventType\"");
  Consent c;
  c.channels = {channels::kSms};
  if (*type == "optout.stop") {
    c.change = Consent::Change::kOptOut;
    c.reason = "optout.stop";
  } else if (*type == "message.received") {
    auto dir = StringOrNumberField(obj, "direction", &wrong);
    if (dir && *dir != "inbound") return Status::OK();
    auto body = StringOrNumberField(obj, "body", &wrong);
    TextConsent tc = ClassifyText(body ? *body : std::string());
    switch (tc.kind) {
      case TextConsent::Kind::kNone:
        return Status::OK();
      case TextConsent::Kind::kOptOut:
        c.change = Consent::Change::kOptOut;
        c.reason = "keyword " + tc.word;
        break;
      case TextConsent::Kind::kOptIn:
        c.change = Consent::Change::kOptIn;
        c.reason = "keyword " + tc.word;
        break;
      case TextConsent::Kind::kReview:
        c.change = Consent::Change::kReview;
        c.reason = "contains " + tc.word;
        break;
    }
  } else {
    return Status::OK();
  }
  auto from = StringOrNumberField(obj, "from", &wrong);
  if (!from) return Status::InvalidArgument("Verity \"" + *type + "\" without \"from\"");
  auto phone = s.normalizer ? s.normalizer->Phone(*from) : std::optional<std::string>(*from);
  if (!phone) return Status::InvalidArgument("Verity \"" + *type + "\" with an unreadable \"from\"");
  auto id = StringOrNumberField(obj, "messageId", &wrong);
  if (!id || id->empty())
    return Status::InvalidArgument("Verity \"" + *type + "\" without \"messageId\"");
  c.message_id = *id;
  ContactFact f;
  f.system = "verity";
  f.fields[fields::kPhone] = *phone;
  if (auto ts = StringOrNumberField(obj, "timestamp", &wrong)) {
    if (auto us = ParseIso8601Micros(*ts)) f.source_time_us = *us;
  }
  f.consents.push_back(std::move(c));
  out->push_back(std::move(f));
  return Status::OK();
}

}  // namespace dfm
