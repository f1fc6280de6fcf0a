// Verity (in-house texting over Telnyx; docs/verity.md): the pieces
// connector.cc puts together into its descriptor. Internal to this folder
// and its tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "connectors/connector.h"

namespace dfm {

// webhook.cc: X-Texting-Signature, ids, and its window.
std::vector<SettingSpec> VerityWebhookSettings();
std::unique_ptr<WebhookSource> NewVerityWebhookSource(const SystemSettings& s,
                                                      std::vector<SettingProblem>* problems);

// mapper.cc: texts, delivery statuses and opt-outs from its webhooks.
Status MapVerityWebhook(const WebhookReceived& w, const MapperSettings& s,
                        std::vector<ContactFact>* out);

// client.cc: its API (contacts, opt-outs, sends).
std::vector<SettingSpec> VerityApiSettings();
std::unique_ptr<VendorClient> NewVerityClient(const SystemSettings& s, HttpClient* http);
Credentials VerityCredentials(const SystemSettings& s);

const Connector& VerityConnector();

// probe.cc: what `dfm diagnose` checks with the vendor.
void ProbeVerity(const SystemSettings& s, const Credentials& c, HttpClient* http, ProbeCallback done);

}  // namespace dfm
