// WhatsApp's descriptor (connectors/connector.h).
#include "connectors/whatsapp/whatsapp.h"
#include "sync/consent.h"

namespace dfm {
namespace {

Connector Make() {
  Connector c;
  c.system = "whatsapp";
  c.name = "WhatsApp";
  c.settings = WhatsAppWebhookSettings();
  for (auto& s : WhatsAppApiSettings()) c.settings.push_back(std::move(s));
  // One Meta app serves many tenants: the App Secret may be shared, the
  // phone number id may not (docs/vendors/whatsapp.md, "One app, many tenants").
  c.tenant_key = "phone_number_id";
  c.webhook_source = NewWhatsAppWebhookSource;
  c.map_webhook = MapWhatsAppWebhook;
  c.describe_webhook = [](const WebhookReceived& w) {
    const bool status = w.body.find("\"statuses\"") != std::string::npos;
    const bool message = w.body.find("\"messages\"") != std::string::npos;
    return status && message ? "messages and statuses" : status ? "statuses" : message ? "messages" : "";
  };
  c.outbound_enabled = [](const SystemSettings& s) { return !s.at("access_token").empty(); };
  c.client = NewWhatsAppClient;
  c.credentials = WhatsAppCredentials;
  // A person is their number: no contact store, only messages.
  c.accepted_fields = {fields::kPhone};
  c.key_field = fields::kPhone;
  c.holds_contacts = false;
  c.takes_receipts = true;
  c.consent_channels = {};  // WhatsApp keeps no opt-out list the engine can set
  c.roles = {Role::kSender};
  return c;
}

}  // namespace

const Connector& WhatsAppConnector() {
  static const Connector kConnector = Make();
  return kConnector;
}

}  // namespace dfm
