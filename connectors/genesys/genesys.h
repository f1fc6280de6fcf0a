// Genesys Cloud Open Messaging (docs/vendors/genesys.md): the pieces
// connector.cc puts together into its descriptor. Internal to this folder
// and its tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "connectors/connector.h"

namespace dfm {

// webhook.cc: X-Hub-Signature-256 (base64, the integration's secret
// token), the tenant's integration id, event ids.
std::vector<SettingSpec> GenesysWebhookSettings();
std::unique_ptr<WebhookSource> NewGenesysWebhookSource(const SystemSettings& s,
                                                       std::vector<SettingProblem>* problems);

// mapper.cc: agents' replies (send requests) and receipts.
Status MapGenesysWebhook(const WebhookReceived& w, const MapperSettings& s,
                         std::vector<ContactFact>* out);

// client.cc: OAuth client credentials, inbound messages and receipts.
std::vector<SettingSpec> GenesysApiSettings();
std::unique_ptr<VendorClient> NewGenesysClient(const SystemSettings& s, HttpClient* http);
Credentials GenesysCredentials(const SystemSettings& s);
// https://login.<region> and https://api.<region>, unless the settings
// name other bases (a sandbox).
std::string GenesysLoginBase(const SystemSettings& s);
std::string GenesysApiBase(const SystemSettings& s);

const Connector& GenesysConnector();

}  // namespace dfm
