// Telnyx's descriptor (connectors/connector.h): its messaging webhooks, for
// a tenant whose Verity texts over Telnyx. It takes no pushes.
#include "connectors/common/json_body.h"
#include "connectors/telnyx/telnyx.h"

namespace dfm {
namespace {

// "message.received", "message.finalized", ...: the body's data.event_type.
std::string Describe(const WebhookReceived& w) {
  simdjson::dom::object obj;
  simdjson::dom::object data;
  bool wrong = false;
  if (!ParseJsonObject(w.body, &obj).ok() || obj["data"].get(data)) return "";
  auto t = StringOrNumberField(data, "event_type", &wrong);
  return t ? *t : "";
}

Connector Make() {
  Connector c;
  c.system = "telnyx";
  c.name = "Telnyx";
  c.settings = TelnyxWebhookSettings();
  c.webhook_source = NewTelnyxWebhookSource;
  c.account_key = "public_key";  // one key per Telnyx account
  c.account_binding = "messaging_profile_ids";
  c.map_webhook = MapTelnyxWebhook;
  c.describe_webhook = Describe;
  c.holds_contacts = false;
  return c;
}

}  // namespace

const Connector& TelnyxConnector() {
  static const Connector kConnector = Make();
  return kConnector;
}

}  // namespace dfm
