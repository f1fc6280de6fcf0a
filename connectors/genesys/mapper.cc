// Genesys Open Messaging webhooks -> facts (docs/vendors/genesys.md).
//
// - A Text (or Structured) message with direction Outbound: an agent's
//   reply, a request to deliver it (Activity::kSend) to `channel.to.id`
//   (the person's number, as the engine gave it in the inbound message) on
//   the tenant's `channel` setting ("whatsapp"). Its attachments pass by
//   reference: "<image|video|audio|document> <mime> <url>" lines. The fact
//   names the person by that id (external_id), which the engine accepts
//   only for a person whose conversation it opened in Genesys.
// - A Receipt: a status (lower case: delivered, read, failed, published,
//   removed) of the message with that `id` (Genesys's id of a message the
//   engine sent it); the first reason as "<code>: <message>".
// Other types (typing events) carry no facts.
#include <simdjson.h>

#include "connectors/common/json_body.h"
#include "connectors/genesys/genesys.h"
#include "util/clock.h"
#include "util/strings.h"

namespace dfm {
namespace {

std::string MediaKind(const std::string& media_type) {
  std::string k = AsciiLower(media_type);
  return k == "file" ? "document" : k;
}

}  // namespace

Status MapGenesysWebhook(const WebhookReceived& w, const MapperSettings& s,
                         std::vector<ContactFact>* out) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(w.body).get(doc) || !doc.is_object())
    return Status::InvalidArgument("Genesys webhook body is not a JSON object");
  const std::string type = StringMember(doc, "type"), id = StringMember(doc, "id");
  const bool receipt = type == "Receipt";
  if (!receipt && type != "Text" && type != "Structured") return Status::OK();
  if (!receipt && StringMember(doc, "direction") != "Outbound") return Status::OK();
  auto channel = doc["channel"];
  // The person: the recipient of what the agent sent; a receipt of a
  // message the person sent names them as its sender.
  std::string who = StringMember(channel["to"], "id");
  if (who.empty()) who = StringMember(channel["from"], "id");
  if (who.empty()) return Status::InvalidArgument("Genesys " + type + " without channel.to.id");
  std::string e164 = who[0] == '+' ? who : "+" + who;
  auto phone = s.normalizer ? s.normalizer->Phone(e164) : std::optional<std::string>(e164);
  if (!phone) return Status::InvalidArgument("Genesys " + type + " with an unreadable channel.to.id");
  ContactFact f;
  f.system = "genesys";
  f.external_id = who;
  f.fields[fields::kPhone] = *phone;
  if (auto t = ParseIso8601Micros(StringMember(channel, "time"))) f.source_time_us = *t;
  Activity a;
  a.message_id = id;
  a.channel = s.Get("channel", "whatsapp");
  if (receipt) {
    a.kind = Activity::Kind::kStatus;
    a.status = AsciiLower(StringMember(doc, "status"));
    simdjson::dom::array reasons;
    if (!doc["reasons"].get(reasons) && reasons.size() > 0) {
      auto r = reasons.at(0);
      a.error = StringMember(r, "code") + ": " + StringMember(r, "message");
    }
  } else {
    a.kind = Activity::Kind::kSend;
    a.direction = "outbound";
    a.body = StringMember(doc, "text");
    simdjson::dom::array content;
    if (!doc["content"].get(content)) {
      for (simdjson::dom::element c : content) {
        if (StringMember(c, "contentType") != "Attachment") continue;
        auto at = c["attachment"];
        std::string mime = StringMember(at, "mime");
        if (!a.media.empty()) a.media += "\n";
        a.media += MediaKind(StringMember(at, "mediaType")) + " " +
                   (mime.empty() ? "application/octet-stream" : mime) + " " + StringMember(at, "url");
      }
    }
    if (a.body.empty() && a.media.empty())
      return Status::InvalidArgument("Genesys message with neither text nor attachment");
  }
  f.activities.push_back(std::move(a));
  out->push_back(std::move(f));
  return Status::OK();
}

}  // namespace dfm
