// Aloware's descriptor (connectors/connector.h).
#include "connectors/aloware/aloware.h"
#include "connectors/common/json_body.h"

namespace dfm {

namespace {

Connector Make() {
  Connector c;
  c.system = "aloware";
  c.name = "Aloware";
  c.settings = AlowareWebhookSettings();
  for (auto& s : AlowareApiSettings()) c.settings.push_back(std::move(s));
  c.webhook_secret_keys = {"password", "token"};
  c.webhook_source = NewAlowareWebhookSource;
  c.map_webhook = MapAlowareWebhook;
  c.map_import = MapAlowareImport;
  // Its webhooks name themselves in "event".
  c.describe_webhook = [](const WebhookReceived& w) { return JsonWebhookKind(w.body); };
  c.outbound_enabled = HasApiBaseUrl;
  c.probe = ProbeAloware;
  c.client = NewAlowareClient;
  c.credentials = AlowareCredentials;
  c.backfill = Connector::Backfill::kLookupByPhone;
  c.accepted_fields = ContactFieldNames();
  c.consent_channels = {"sms", "call"};  // is_dnc
  c.consent_one_flag = true;
  c.reads_consent = true;
  c.marks_dnc = true;
  c.key_field = fields::kPhone;
  c.roles = {Role::kLists, Role::kDialer};
  c.default_roles = {Role::kLists, Role::kDialer};
  c.default_owner_of = {"disposition"};
  return c;
}

}  // namespace

const Connector& AlowareConnector() {
  static const Connector kConnector = Make();
  return kConnector;
}

}  // namespace dfm
