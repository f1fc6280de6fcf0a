// Twilio Messaging webhooks -> facts.
//
// An inbound message (form fields MessageSid, From, Body, and OptOutType
// when Advanced Opt-Out is on) is read for consent only, so far: OptOutType
// STOP is an opt-out and START an opt-in (HELP is neither); without
// OptOutType the Body is read by the engine's own rule (sync/consent.h).
// Status callbacks (MessageStatus) carry no facts.
#include "connectors/common/mapper.h"
#include "connectors/common/webhook_source.h"
#include "sync/consent.h"

namespace dfm {

Status MapTwilioWebhook(const WebhookReceived& w, const MapperSettings& s,
                        std::vector<ContactFact>* out) {
  auto form = ParseForm(w.body);
  if (!form) return Status::InvalidArgument("Twilio webhook body is not a valid form");
  auto get = [&](std::string_view k) -> const std::string* {
    for (const auto& [name, value] : *form)
      if (name == k) return &value;
    return nullptr;
  };
  if (get("MessageStatus") && !get("Body")) return Status::OK();  // a status callback
  const std::string* body = get("Body");
  if (!body) return Status::OK();
  Consent c;
  c.channels = {channels::kSms};
  const std::string* opt = get("OptOutType");
  if (opt && !opt->empty()) {
    if (*opt == "STOP") {
      c.change = Consent::Change::kOptOut;
    } else if (*opt == "START") {
      c.change = Consent::Change::kOptIn;
    } else {
      return Status::OK();  // HELP
    }
    c.reason = "OptOutType " + *opt;
  } else {
    TextConsent tc = ClassifyText(*body);
    if (tc.kind == TextConsent::Kind::kNone) return Status::OK();
    c.change = tc.kind == TextConsent::Kind::kOptOut  ? Consent::Change::kOptOut
               : tc.kind == TextConsent::Kind::kOptIn ? Consent::Change::kOptIn
                                                      : Consent::Change::kReview;
    c.reason = (tc.kind == TextConsent::Kind::kReview ? "contains " : "keyword ") + tc.word;
  }
  const std::string* from = get("From");
  if (!from) return Status::InvalidArgument("Twilio message without \"From\"");
  auto phone = s.normalizer ? s.normalizer->Phone(*from) : std::optional<std::string>(*from);
  if (!phone) return Status::InvalidArgument("Twilio message with an unreadable \"From\"");
  const std::string* sid = get("MessageSid");
  if (!sid) sid = get("SmsSid");
  if (!sid || sid->empty()) return Status::InvalidArgument("Twilio message without \"MessageSid\"");
  c.message_id = *sid;
  ContactFact f;
  f.system = "twilio";
  f.fields[fields::kPhone] = *phone;
  f.consents.push_back(std::move(c));
  out->push_back(std::move(f));
  return Status::OK();
}

}  // namespace dfm
