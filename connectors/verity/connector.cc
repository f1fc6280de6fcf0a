// Verity's descriptor (connectors/connector.h).
#include "connectors/common/json_body.h"
#include "connectors/verity/verity.h"

namespace dfm {

namespace {

Connector Make() {
  Connector c;
  c.system = "verity";
  c.name = "Verity";
  c.settings = VerityWebhookSettings();
  for (auto& s : VerityApiSettings()) c.settings.push_back(std::move(s));
  c.webhook_secret_keys = {"webhook_secret"};
  c.webhook_source = NewVerityWebhookSource;
  c.map_webhook = MapVerityWebhook;
  c.describe_webhook = [](const WebhookReceived& w) { return JsonWebhookKind(w.body); };
  c.outbound_enabled = HasApiBaseUrl;
  // Sends always; contacts and opt-outs only where its Verity has /v1/contacts.
  c.contacts_enabled = [](const SystemSettings& s) { return s.at("contacts_api") == "true"; };
  c.probe = ProbeVerity;
  c.client = NewVerityClient;
  c.credentials = VerityCredentials;
  c.accepted_fields = {fields::kFirstName, fields::kLastName, fields::kEmail, fields::kPhone};
  c.key_field = fields::kPhone;
  c.consent_channels = {"sms"};
  c.marks_dnc = true;  // smsOptOut
  c.roles = {Role::kSender};
  c.default_roles = {Role::kSender};
  return c;
}

}  // namespace

const Connector& VerityConnector() {
  static const Connector kConnector = Make();
  return kConnector;
}

}  // namespace dfm
