// Twilio Messaging: the pieces connector.cc puts together into its
// descriptor. Internal to this folder and its tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "connectors/connector.h"

namespace dfm {

// webhook.cc: X-Twilio-Signature over the public URL, and ids.
std::vector<SettingSpec> TwilioWebhookSettings();
std::unique_ptr<WebhookSource> NewTwilioWebhookSource(const SystemSettings& s,
                                                      std::vector<SettingProblem>* problems);

// mapper.cc: inbound texts (and their opt-outs) and status callbacks.
Status MapTwilioWebhook(const WebhookReceived& w, const MapperSettings& s,
                        std::vector<ContactFact>* out);

const Connector& TwilioConnector();

// probe.cc: what `dfm diagnose` checks with the vendor.
void ProbeTwilio(const SystemSettings& s, const Credentials& c, HttpClient* http, ProbeCallback done);

}  // namespace dfm
