// HaloPSA's descriptor (connectors/connector.h).
#include "connectors/common/json_body.h"
#include "connectors/common/outbound.h"
#include "connectors/halopsa/halopsa.h"

namespace dfm {

namespace {

Connector Make() {
  Connector c;
  c.system = "halopsa";
  c.name = "HaloPSA";
  c.settings = HaloWebhookSettings();
  for (auto& s : HaloApiSettings()) c.settings.push_back(std::move(s));
  c.webhook_secret_keys = {"password"};
  c.webhook_source = NewHaloWebhookSource;
  c.map_webhook = MapHaloWebhook;
  c.map_import = MapHaloImport;
  c.describe_webhook = [](const WebhookReceived& w) { return JsonWebhookKind(w.body); };
  c.outbound_enabled = HasApiBaseUrl;
  c.client = NewHaloClient;
  c.credentials = HaloCredentials;
  c.probe = ProbeHalo;
  c.backfill = Connector::Backfill::kList;
  // Title is a Users field; the others reach custom fields when mapped
  // (`halopsa.custom_fields`). The company names the Client a new user
  // is created under.
  c.accepted_fields = {fields::kFirstName,   fields::kLastName,      fields::kEmail,
                       fields::kPhone,       fields::kTitle,         fields::kCompanyName,
                       fields::kLinkedinUrl, fields::kCompanyDomain, fields::kCompanySize,
                       fields::kIndustry};
  c.consent_channels = {"email"};  // neversendemails
  c.reads_consent = true;          // read_consent: every user with the email
  return c;
}

}  // namespace

const Connector& HaloConnector() {
  static const Connector kConnector = Make();
  return kConnector;
}

}  // namespace dfm
