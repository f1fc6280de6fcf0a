// WhatsApp notifications -> facts (docs/vendors/whatsapp.md).
//
// Every change's value is about the tenant's business number (metadata);
// the person is `from` (a message) or `recipient_id` (a status), a wa_id:
// their number in E.164 without '+'.
// - messages[]: an inbound text on channel "whatsapp" (kText). Its text:
//   text.body, a button's text, an interactive reply's title, a media's
//   caption. Media (image, video, audio, document, sticker) pass by
//   reference: "<kind> <mime_type> wa-media:<id>" (Activity::media); a type
//   with nothing to pass on (location, contacts, reaction, order, system,
//   unsupported) becomes the text "[WhatsApp <type> message]" so the agent
//   sees that something came. The text is read for opt-out words like an
//   SMS (sync/consent.h), about channel "whatsapp" only.
// - statuses[]: a delivery status of our message (kStatus, outbound):
//   sent, delivered, read, failed with its first error as
//   "<code>: <title>" (131047: outside the 24-hour window). Its
//   biz_opaque_callback_data is the engine's message key, which the send
//   gave it, so a status that arrives before the send's answer still finds
//   its message.
// - user_preferences[] (category marketing_messages): "stop" opts the
//   person out of channel "whatsapp" (reason "user_preferences stop"),
//   "resume" opts them in: both the person's own statement.
#include <simdjson.h>

#include "connectors/common/json_body.h"
#include "connectors/whatsapp/whatsapp.h"
#include "sync/consent.h"

namespace dfm {
namespace {

// The item's `timestamp` (epoch seconds, a string or, in user_preferences,
// a number) in µs; 0 when absent or not a plausible time (WhatsAppSeconds).
template <class E>
int64_t EpochSeconds(const E& e) {
  std::string_view v;
  int64_t n = 0;
  if (!e["timestamp"].get(v)) n = std::strtoll(std::string(v).c_str(), nullptr, 10);
  else if (e["timestamp"].get(n)) n = 0;
  return WhatsAppSeconds(n) * 1000000;
}

Status Person(std::string_view wa_id, const MapperSettings& s, ContactFact* f) {
  std::string e164 = "+" + std::string(wa_id);
  auto phone = s.normalizer ? s.normalizer->Phone(e164) : std::optional<std::string>(e164);
  if (!phone) return Status::InvalidArgument("WhatsApp notification with an unreadable wa_id");
  f->fields[fields::kPhone] = *phone;
  return Status::OK();
}

// The text and media of one inbound message.
template <class E>
void ReadContent(const E& m, const std::string& type, Activity* a) {
  if (type == "text") {
    a->body = StringMember(m["text"], "body");
  } else if (type == "button") {
    a->body = StringMember(m["button"], "text");
  } else if (type == "interactive") {
    auto i = m["interactive"];
    a->body = StringMember(i["button_reply"], "title");
    if (a->body.empty()) a->body = StringMember(i["list_reply"], "title");
  } else if (type == "image" || type == "video" || type == "audio" || type == "document" ||
             type == "sticker") {
    auto media = m[type];
    a->body = StringMember(media, "caption");
    std::string mime = StringMember(media, "mime_type");
    a->media = type + " " + (mime.empty() ? "application/octet-stream" : mime) + " wa-media:" +
               StringMember(media, "id");
  }
  if (a->body.empty() && a->media.empty()) a->body = "[WhatsApp " + type + " message]";
}

}  // namespace

Status MapWhatsAppWebhook(const WebhookReceived& w, const MapperSettings& s,
                          std::vector<ContactFact>* out) {
  simdjson::dom::object obj;
  Status st = ParseJsonObject(w.body, &obj);
  if (!st.ok()) return Status::InvalidArgument(st.message());
  simdjson::dom::array entries;
  if (obj["entry"].get(entries)) return Status::InvalidArgument("WhatsApp notification without entry");
  for (simdjson::dom::element e : entries) {
    simdjson::dom::array changes;
    if (e["changes"].get(changes)) continue;
    for (simdjson::dom::element c : changes) {
      auto value = c["value"];
      std::string ours = StringMember(value["metadata"], "display_phone_number");
      std::string our_number;
      if (!ours.empty()) {
        auto n = s.normalizer ? s.normalizer->Phone("+" + ours) : std::optional<std::string>("+" + ours);
        if (n) our_number = *n;
      }
      simdjson::dom::array list;
      if (!value["messages"].get(list)) {
        for (simdjson::dom::element m : list) {
          ContactFact f;
          f.system = "whatsapp";
          std::string from = StringMember(m, "from"), id = StringMember(m, "id"), type = StringMember(m, "type");
          if (from.empty() || id.empty())
            return Status::InvalidArgument("WhatsApp message without from or id");
          Status p = Person(from, s, &f);
          if (!p.ok()) return p;
          f.source_time_us = EpochSeconds(m);
          Activity a;
          a.kind = Activity::Kind::kText;
          a.channel = channels::kWhatsApp;
          a.message_id = id;
          a.direction = "inbound";
          a.our_number = our_number;
          ReadContent(m, type, &a);
          Consent consent;
          consent.channels = {channels::kWhatsApp};
          consent.message_id = id;
          if ((type == "text" || type == "button") && ConsentFromText(a.body, &consent))
            f.consents.push_back(std::move(consent));
          f.activities.push_back(std::move(a));
          out->push_back(std::move(f));
        }
      }
      if (!value["statuses"].get(list)) {
        for (simdjson::dom::element m : list) {
          ContactFact f;
          f.system = "whatsapp";
          std::string to = StringMember(m, "recipient_id"), id = StringMember(m, "id");
          if (to.empty() || id.empty())
            return Status::InvalidArgument("WhatsApp status without recipient_id or id");
          Status p = Person(to, s, &f);
          if (!p.ok()) return p;
          f.source_time_us = EpochSeconds(m);
          Activity a;
          a.kind = Activity::Kind::kStatus;
          a.channel = channels::kWhatsApp;
          a.message_id = id;
          a.message_key = StringMember(m, "biz_opaque_callback_data");
          a.direction = "outbound";
          a.status = StringMember(m, "status");
          a.our_number = our_number;
          simdjson::dom::array errors;
          if (!m["errors"].get(errors) && errors.size() > 0) {
            auto err = errors.at(0);
            int64_t code = 0;
            if (err["code"].get(code)) {}
            std::string title = StringMember(err, "title");
            if (title.empty()) title = StringMember(err, "message");
            a.error = std::to_string(code) + ": " + title;
          }
          f.activities.push_back(std::move(a));
          out->push_back(std::move(f));
        }
      }
      if (!value["user_preferences"].get(list)) {
        for (simdjson::dom::element m : list) {
          if (StringMember(m, "category") != "marketing_messages") continue;
          const std::string v = StringMember(m, "value");
          if (v != "stop" && v != "resume") continue;
          ContactFact f;
          f.system = "whatsapp";
          Status p = Person(StringMember(m, "wa_id"), s, &f);
          if (!p.ok()) return p;
          f.source_time_us = EpochSeconds(m);
          Consent consent;
          consent.change = v == "stop" ? Consent::Change::kOptOut : Consent::Change::kOptIn;
          consent.channels = {channels::kWhatsApp};
          consent.reason = "user_preferences " + v;
          consent.message_id = "user_preferences:" + std::to_string(f.source_time_us / 1000000);
          f.consents.push_back(std::move(consent));
          out->push_back(std::move(f));
        }
      }
    }
  }
  return Status::OK();
}

}  // namespace dfm
