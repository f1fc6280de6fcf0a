// WhatsApp Cloud API (Meta Graph; docs/vendors/whatsapp.md): the pieces
// connector.cc puts together into its descriptor. Internal to this folder
// and its tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "connectors/connector.h"

namespace dfm {

// webhook.cc: X-Hub-Signature-256 (hex, the app secret), the GET
// verification handshake, the tenant's phone_number_id, event ids.
std::vector<SettingSpec> WhatsAppWebhookSettings();
std::unique_ptr<WebhookSource> NewWhatsAppWebhookSource(const SystemSettings& s,
                                                        std::vector<SettingProblem>* problems);

// A notification's epoch seconds when plausible (0 < s < 10^11, so that
// µs fit in 64 bits), else 0 (unknown). A body is untrusted until verified.
inline int64_t WhatsAppSeconds(int64_t s) { return s > 0 && s < 100000000000LL ? s : 0; }

// mapper.cc: messages, statuses and opt-out words from its notifications.
Status MapWhatsAppWebhook(const WebhookReceived& w, const MapperSettings& s,
                          std::vector<ContactFact>* out);

// client.cc: the Graph API messages endpoint (sends, read receipts).
std::vector<SettingSpec> WhatsAppApiSettings();
std::unique_ptr<VendorClient> NewWhatsAppClient(const SystemSettings& s, HttpClient* http);
Credentials WhatsAppCredentials(const SystemSettings& s);
// What a Graph error code means for a send: 0 ok to retry later (a
// throughput or pair limit: 429), 1 retry (a service error: 503), 2 never
// (the request cannot succeed: 131047 outside the 24-hour window, 131026
// undeliverable, ...), 3 the token (401).
int WhatsAppErrorClass(int64_t code);

const Connector& WhatsAppConnector();

}  // namespace dfm
