// Telnyx Messaging (API v2) webhooks, for Verity's texts over Telnyx
// (docs/vendors/telnyx.md): the pieces connector.cc puts together into its
// descriptor. Internal to this folder and its tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "connectors/connector.h"

namespace dfm {

// webhook.cc: telnyx-signature-ed25519 over "{telnyx-timestamp}|{body}".
std::vector<SettingSpec> TelnyxWebhookSettings();
std::unique_ptr<WebhookSource> NewTelnyxWebhookSource(const SystemSettings& s,
                                                      std::vector<SettingProblem>* problems);

// mapper.cc: inbound texts (and their opt-outs) and delivery reports.
Status MapTelnyxWebhook(const WebhookReceived& w, const MapperSettings& s,
                        std::vector<ContactFact>* out);

const Connector& TelnyxConnector();

}  // namespace dfm
