// Genesys Cloud Open Messaging's descriptor (connectors/connector.h).
#include "connectors/common/json_body.h"
#include "connectors/genesys/genesys.h"

namespace dfm {
namespace {

Connector Make() {
  Connector c;
  c.system = "genesys";
  c.name = "Genesys Cloud";
  c.settings = GenesysWebhookSettings();
  for (auto& s : GenesysApiSettings()) c.settings.push_back(std::move(s));
  c.webhook_secret_keys = {"webhook_secret"};
  c.webhook_source = NewGenesysWebhookSource;
  c.map_webhook = MapGenesysWebhook;
  c.describe_webhook = [](const WebhookReceived& w) {
    std::string type = JsonStringAt(w.body, nullptr, "type");
    return type.empty() ? std::string() : "Open Messaging " + type;
  };
  c.outbound_enabled = [](const SystemSettings& s) { return !s.at("client_id").empty(); };
  c.client = NewGenesysClient;
  c.credentials = GenesysCredentials;
  // Open Messaging knows a person by the id we give (their number): it
  // holds conversations, not contacts.
  c.accepted_fields = {fields::kPhone};
  c.key_field = fields::kPhone;
  c.holds_contacts = false;
  c.consent_channels = {};
  c.roles = {Role::kConversations};
  return c;
}

}  // namespace

const Connector& GenesysConnector() {
  static const Connector kConnector = Make();
  return kConnector;
}

}  // namespace dfm
