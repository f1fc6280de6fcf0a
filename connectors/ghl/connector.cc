// GoHighLevel's descriptor (connectors/connector.h).
#include "connectors/common/json_body.h"
#include "connectors/ghl/dnd.h"
#include "connectors/ghl/ghl.h"

namespace dfm {

namespace {

Connector Make() {
  Connector c;
  c.system = "ghl";
  c.name = "GoHighLevel";
  c.settings = GhlWebhookSettings();
  for (auto& s : GhlApiSettings()) c.settings.push_back(std::move(s));
  c.webhook_source = NewGhlWebhookSource;
  c.map_webhook = MapGhlWebhook;
  c.map_import = MapGhlImport;
  // Its webhooks name themselves in "type" (a ProviderOutboundMessage: the
  // channel, "SMS").
  c.describe_webhook = [](const WebhookReceived& w) { return JsonWebhookKind(w.body); };
  c.outbound_enabled = HasApiBaseUrl;
  c.probe = ProbeGhl;
  c.client = NewGhlClient;
  c.credentials = GhlCredentials;
  c.backfill = Connector::Backfill::kList;
  c.accepted_fields = ContactFieldNames();
  for (const auto& [theirs, ours] : ghl::kDndChannels) c.consent_channels.push_back(ours);
  c.reads_consent = true;
  c.marks_dnc = true;
  c.roles = {Role::kConversations};
  c.role_unavailable = [](Role r, const SystemSettings& s) -> std::string {
    auto provider = s.find("conversation_provider_id");
    if (r == Role::kConversations && (provider == s.end() || provider->second.empty()))
      return "ghl.conversation_provider_id is empty";
    return "";
  };
  c.default_roles = {Role::kConversations};
  c.default_owner_of = {fields::kFirstName, fields::kLastName, fields::kEmail,
                        fields::kAddress1,  fields::kCity,     fields::kState,
                        fields::kPostalCode, fields::kCountry, fields::kTags};
  return c;
}

}  // namespace

const Connector& GhlConnector() {
  static const Connector kConnector = Make();
  return kConnector;
}

}  // namespace dfm
