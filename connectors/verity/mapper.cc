// Verity webhooks -> facts (docs/verity.md).
//
// - message.received (direction inbound): a text from `from`: an activity
//   (kText, inbound) and, when its text is an opt-out or opt-in word (or
//   contains one: flagged for review), a consent statement about sms.
// - message.sent (outbound): a text to `to`: an activity (kText, outbound)
//   whose key is the `externalId` the engine gave when it asked for the
//   send (absent for texts sent from Verity itself).
// - message.delivered / message.failed: a delivery status (kStatus) of the
//   text with that messageId or externalId.
// - optout.stop: Verity's own opt-out detection; opts `from` out of sms.
// The message id is the cause recorded in the opt-out registry; `timestamp`
// is the source time. Other event types carry no facts.
#include "connectors/verity/verity.h"

#include "connectors/common/json_body.h"
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
  const std::string& t = *type;
  const bool received = t == "message.received", sent = t == "message.sent";
  const bool status = t == "message.delivered" || t == "message.failed";
  if (!received && !sent && !status && t != "optout.stop") return Status::OK();
  auto dir = StringOrNumberField(obj, "direction", &wrong);
  if (received && dir && *dir != "inbound") return Status::OK();
  const bool outbound = sent || status;
  // The person: the recipient of an outbound text, else the sender.
  const char* who_key = outbound ? "to" : "from";
  auto who = StringOrNumberField(obj, who_key, &wrong);
  if (!who) return Status::InvalidArgument("Verity \"" + t + "\" without \"" + who_key + "\"");
  auto phone = s.normalizer ? s.normalizer->Phone(*who) : std::optional<std::string>(*who);
  if (!phone)
    return Status::InvalidArgument("Verity \"" + t + "\" with an unreadable \"" + who_key + "\"");
  auto id = StringOrNumberField(obj, "messageId", &wrong);
  if (!id || id->empty()) return Status::InvalidArgument("Verity \"" + t + "\" without \"messageId\"");
  ContactFact f;
  f.system = "verity";
  f.fields[fields::kPhone] = *phone;
  if (auto ts = StringOrNumberField(obj, "timestamp", &wrong)) {
    if (auto us = ParseIso8601Micros(*ts)) f.source_time_us = *us;
  }
  auto body = StringOrNumberField(obj, "body", &wrong);
  if (t == "optout.stop" || received) {
    Consent c;
    c.channels = {channels::kSms};
    c.message_id = *id;
    if (t == "optout.stop") {
      c.change = Consent::Change::kOptOut;
      c.reason = "optout.stop";
      f.consents.push_back(std::move(c));
    } else {
      if (ConsentFromText(body ? *body : std::string(), &c)) f.consents.push_back(std::move(c));
    }
  }
  if (t != "optout.stop") {
    Activity a;
    a.kind = status ? Activity::Kind::kStatus : Activity::Kind::kText;
    a.message_id = *id;
    a.direction = outbound ? "outbound" : "inbound";
    if (auto key = StringOrNumberField(obj, "externalId", &wrong)) a.message_key = *key;
    if (auto stv = StringOrNumberField(obj, "status", &wrong)) a.status = *stv;
    if (status && a.status.empty()) a.status = t == "message.delivered" ? "delivered" : "failed";
    if (!status && body) a.body = *body;
    if (auto ours = StringOrNumberField(obj, outbound ? "from" : "to", &wrong)) {
      auto n = s.normalizer ? s.normalizer->Phone(*ours) : ours;
      if (n) a.our_number = *n;
    }
    f.activities.push_back(std::move(a));
  }
  out->push_back(std::move(f));
  return Status::OK();
}

}  // namespace dfm
