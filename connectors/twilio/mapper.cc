// Twilio Messaging webhooks -> facts.
//
// An inbound message (form fields MessageSid, From, To, Body, and
// OptOutType when Advanced Opt-Out is on) is a text from `From` (an
// activity) and is read for consent: OptOutType STOP is an opt-out and START
// an opt-in (HELP is neither); without OptOutType the Body is read by the
// engine's own rule (sync/consent.h).
// A status callback (MessageStatus, or SmsStatus alone; no Body) is the delivery status of an
// outbound text to `To` (an activity of kind kStatus); the engine only
// notes it (a text it never saw is logged as observed).
#include "connectors/common/json_body.h"
#include "connectors/twilio/twilio.h"
#include "sync/consent.h"
#include "util/strings.h"

namespace dfm {

namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

// A JSON body (signed by bodySHA256, webhook.cc) names the same parameters
// as a form: its top-level string and number members.
Status JsonParams(std::string_view body, Params* out) {
  simdjson::dom::object obj;
  if (Status st = ParseJsonObject(body, &obj); !st.ok()) return st;
  for (auto [key, value] : obj) {
    std::string_view k(key);
    bool wrong_type = false;
    auto v = StringOrNumberField(obj, k, &wrong_type);
    if (v) out->emplace_back(std::string(k), std::move(*v));
  }
  return Status::OK();
}

bool IsJson(const WebhookReceived& w) {
  std::string ct(w.Header("content-type"));
  if (!ct.empty()) {  // as ingest reads it: the media type, trimmed, any case
    ct = ct.substr(0, ct.find(';'));
    AsciiLowerInPlace(&ct);
    return TrimSpace(ct) == "application/json";
  }
  size_t first = w.body.find_first_not_of(" \t\r\n");
  return first != std::string::npos && (w.body[first] == '{' || w.body[first] == '[');
}

}  // namespace

Status MapTwilioWebhook(const WebhookReceived& w, const MapperSettings& s,
                        std::vector<ContactFact>* out) {
  Params params;
  if (IsJson(w)) {
    if (Status st = JsonParams(w.body, &params); !st.ok())
      return Status::InvalidArgument("Twilio webhook's JSON body: " + st.message());
  } else if (auto form = ParseForm(w.body)) {
    params = std::move(*form);
  } else {
    return Status::InvalidArgument("Twilio webhook body is not a valid form");
  }
  auto get = [&](std::string_view k) -> const std::string* {
    for (const auto& [name, value] : params)
      if (name == k) return &value;
    return nullptr;
  };
  const std::string* body = get("Body");
  // SmsStatus is MessageStatus's older name (an inbound text's is
  // "received"): a callback carrying only it is the same status.
  const std::string* status = get("MessageStatus");
  if (!status && !body) status = get("SmsStatus");
  if (!body && !status) return Status::OK();
  const bool callback = status && !body;
  const char* who_key = callback ? "To" : "From";
  const std::string* who = get(who_key);
  if (!who) return Status::InvalidArgument(std::string("Twilio message without \"") + who_key + "\"");
  auto phone = s.normalizer ? s.normalizer->Phone(*who) : std::optional<std::string>(*who);
  if (!phone)
    return Status::InvalidArgument(std::string("Twilio message with an unreadable \"") + who_key + "\"");
  const std::string* sid = get("MessageSid");
  if (!sid) sid = get("SmsSid");
  if (!sid || sid->empty()) return Status::InvalidArgument("Twilio message without \"MessageSid\"");
  ContactFact f;
  f.system = "twilio";
  f.fields[fields::kPhone] = *phone;
  Activity a;
  a.kind = callback ? Activity::Kind::kStatus : Activity::Kind::kText;
  a.message_id = *sid;
  a.direction = callback ? "outbound" : "inbound";
  if (status) a.status = *status;
  if (body) a.body = *body;
  if (const std::string* ours = get(callback ? "From" : "To")) {
    auto n = s.normalizer ? s.normalizer->Phone(*ours) : std::optional<std::string>(*ours);
    if (n) a.our_number = *n;
  }
  if (!callback) {
    Consent c;
    c.channels = {channels::kSms};
    c.message_id = *sid;
    const std::string* opt = get("OptOutType");
    bool has = true;
    if (opt && !opt->empty()) {
      if (*opt == "STOP") {
        c.change = Consent::Change::kOptOut;
      } else if (*opt == "START") {
        c.change = Consent::Change::kOptIn;
      } else {
        has = false;  // HELP
      }
      c.reason = "OptOutType " + *opt;  // Twilio read the person's keyword itself
    } else {
      has = ConsentFromText(*body, &c);
    }
    if (has) f.consents.push_back(std::move(c));
  }
  f.activities.push_back(std::move(a));
  out->push_back(std::move(f));
  return Status::OK();
}

}  // namespace dfm
