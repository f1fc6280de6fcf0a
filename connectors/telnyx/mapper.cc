// Telnyx Messaging webhooks -> facts (docs/vendors/telnyx.md).
//
// - message.received: a text from `payload.from.phone_number` (an activity,
//   inbound) read for consent. Telnyx's own opt-out handling marks its
//   keywords in `payload.autoresponse_type` ("STOP" an opt-out, "START" an
//   opt-in, "HELP" neither), as Twilio's OptOutType does; without it the
//   text is read by the engine's rule (sync/consent.h).
// - message.sent / message.finalized: the delivery status of an outbound
//   text to `payload.to[0].phone_number` (its `status`; an activity of kind
//   kStatus, which the engine only notes, as for Twilio's callbacks).
// The message id (`payload.id`) is the cause in the opt-out registry.
// Other event types carry no facts.
#include <simdjson.h>

#include "connectors/common/json_body.h"
#include "connectors/telnyx/telnyx.h"
#include "sync/consent.h"
#include "util/clock.h"

namespace dfm {
namespace {

// The number of a `from` or `to[i]` entry: an object with phone_number or,
// in Telnyx's older bodies, a plain string.
std::optional<std::string> Number(simdjson::dom::element e) {
  std::string_view v;
  if (!e.get(v)) return std::string(v);
  if (!e["phone_number"].get(v)) return std::string(v);
  return std::nullopt;
}

}  // namespace

Status MapTelnyxWebhook(const WebhookReceived& w, const MapperSettings& s,
                        std::vector<ContactFact>* out) {
  simdjson::dom::object obj;
  Status st = ParseJsonObject(w.body, &obj);
  if (!st.ok()) return Status::InvalidArgument(st.message());
  simdjson::dom::object data, payload;
  if (obj["data"].get(data)) return Status::InvalidArgument("Telnyx webhook without \"data\"");
  bool wrong = false;
  auto type = StringOrNumberField(data, "event_type", &wrong);
  if (!type) return Status::InvalidArgument("Telnyx webhook without \"data.event_type\"");
  const bool received = *type == "message.received";
  if (!received && *type != "message.sent" && *type != "message.finalized") return Status::OK();
  if (data["payload"].get(payload)) return Status::InvalidArgument("Telnyx " + *type + " without \"payload\"");
  auto id = StringOrNumberField(payload, "id", &wrong);
  if (!id || id->empty()) return Status::InvalidArgument("Telnyx " + *type + " without \"payload.id\"");

  // The person: the sender of an inbound text, the first recipient of an outbound one.
  // `to` is a list of recipients, or a plain string in older bodies.
  simdjson::dom::element from, to0;
  simdjson::dom::array to;
  const bool has_from = !payload["from"].get(from);
  const bool has_to = payload["to"].get(to) == simdjson::SUCCESS
                          ? !to.at(0).get(to0)
                          : payload["to"].is_string() && !payload["to"].get(to0);
  std::optional<std::string> who, ours, status;
  if (received) {
    if (has_from) who = Number(from);
    if (has_to) ours = Number(to0);
  } else {
    if (has_to) who = Number(to0);
    if (has_from) ours = Number(from);
    std::string_view v;
    if (has_to && !to0["status"].get(v)) status = std::string(v);
  }
  const char* who_key = received ? "payload.from.phone_number" : "payload.to[0].phone_number";
  if (!who) return Status::InvalidArgument("Telnyx " + *type + " without \"" + who_key + "\"");
  auto phone = s.normalizer ? s.normalizer->Phone(*who) : who;
  if (!phone) return Status::InvalidArgument("Telnyx " + *type + " with an unreadable \"" + who_key + "\"");

  ContactFact f;
  f.system = "telnyx";
  f.fields[fields::kPhone] = *phone;
  if (auto at = StringOrNumberField(data, "occurred_at", &wrong))
    if (auto us = ParseIso8601Micros(*at)) f.source_time_us = *us;
  Activity a;
  a.kind = received ? Activity::Kind::kText : Activity::Kind::kStatus;
  a.message_id = *id;
  a.direction = received ? "inbound" : "outbound";
  if (ours) {
    auto n = s.normalizer ? s.normalizer->Phone(*ours) : ours;
    if (n) a.our_number = *n;
  }
  if (received) {
    auto text = StringOrNumberField(payload, "text", &wrong);
    a.body = text ? *text : "";
    simdjson::dom::array media;
    if (!payload["media"].get(media)) {
      for (simdjson::dom::element m : media) {
        std::string_view url, mime;
        if (m["url"].get(url) || url.empty()) continue;
        if (m["content_type"].get(mime)) mime = "application/octet-stream";
        const std::string_view top = mime.substr(0, mime.find('/'));
        const char* kind = top == "image" ? "image" : top == "video" ? "video"
                           : top == "audio" ? "audio" : "document";
        if (!a.media.empty()) a.media += "\n";
        a.media += std::string(kind) + " " + std::string(mime) + " " + std::string(url);
      }
    }
    Consent c;
    c.channels = {channels::kSms};
    c.message_id = *id;
    bool has = false;
    auto auto_type = StringOrNumberField(payload, "autoresponse_type", &wrong);
    if (auto_type && (*auto_type == "STOP" || *auto_type == "START")) {
      c.change = *auto_type == "STOP" ? Consent::Change::kOptOut : Consent::Change::kOptIn;
      c.reason = "autoresponse_type " + *auto_type;  // Telnyx read the keyword itself
      has = true;
    } else if (!auto_type || *auto_type != "HELP") {
      has = ConsentFromText(a.body, &c);
    }
    if (has) f.consents.push_back(std::move(c));
  } else {
    a.status = status ? *status : (*type == "message.sent" ? "sent" : "");
    simdjson::dom::array errors;
    simdjson::dom::element e0;
    std::string_view code, title;
    if (!payload["errors"].get(errors) && !errors.at(0).get(e0)) {
      if (!e0["code"].get(code)) a.error = std::string(code);
      if (!e0["title"].get(title)) a.error += (a.error.empty() ? "" : ": ") + std::string(title);
    }
  }
  f.activities.push_back(std::move(a));
  out->push_back(std::move(f));
  return Status::OK();
}

}  // namespace dfm
