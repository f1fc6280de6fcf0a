// GoHighLevel (LeadConnector): the pieces connector.cc puts together into
// its descriptor. Internal to this folder and its tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "connectors/connector.h"

namespace dfm {

// webhook.cc: verification and ids of its webhooks.
std::vector<SettingSpec> GhlWebhookSettings();
std::unique_ptr<WebhookSource> NewGhlWebhookSource(const SystemSettings& s,
                                                   std::vector<SettingProblem>* problems);

// mapper.cc: contacts, messages, calls and DND from its webhooks and search
// results.
Status MapGhlWebhook(const WebhookReceived& w, const MapperSettings& s,
                     std::vector<ContactFact>* out);
Status MapGhlImport(const WebhookReceived& w, const MapperSettings& s,
                    std::vector<ContactFact>* out);

// client.cc: its API (contacts, conversations, OAuth).
std::vector<SettingSpec> GhlApiSettings();
std::unique_ptr<VendorClient> NewGhlClient(const SystemSettings& s, HttpClient* http);
Credentials GhlCredentials(const SystemSettings& s);

const Connector& GhlConnector();

// probe.cc: what `dfm diagnose` checks with the vendor.
void ProbeGhl(const SystemSettings& s, const Credentials& c, HttpClient* http, ProbeCallback done);

}  // namespace dfm
