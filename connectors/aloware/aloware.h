// Aloware: the pieces connector.cc puts together into its descriptor.
// Internal to this folder and its tests.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/connector.h"

namespace dfm {

// Its contact event names by default (Aloware does not publish them).
inline constexpr char kAlowareContactEvents[] =
    "Contact Created,Contact Updated,Contact-Created,Contact-Updated";
// "+00:00" / "-05:00" as the µs to subtract from a zone-less time read as
// UTC; nullopt when unreadable.
std::optional<int64_t> AlowareUtcOffsetUs(std::string_view offset);

// webhook.cc: the Authorization it is set to send, ids, and its zone.
std::vector<SettingSpec> AlowareWebhookSettings();
std::unique_ptr<WebhookSource> NewAlowareWebhookSource(const SystemSettings& s,
                                                       std::vector<SettingProblem>* problems);

// mapper.cc: contacts and calls from its webhooks and phone lookups.
Status MapAlowareWebhook(const WebhookReceived& w, const MapperSettings& s,
                         std::vector<ContactFact>* out);
Status MapAlowareImport(const WebhookReceived& w, const MapperSettings& s,
                        std::vector<ContactFact>* out);

// client.cc: its Lead API and contact lookup.
std::vector<SettingSpec> AlowareApiSettings();
std::unique_ptr<VendorClient> NewAlowareClient(const SystemSettings& s, HttpClient* http);
Credentials AlowareCredentials(const SystemSettings& s);

const Connector& AlowareConnector();

// probe.cc: what `dfm diagnose` checks with the vendor.
void ProbeAloware(const SystemSettings& s, const Credentials& c, HttpClient* http, ProbeCallback done);

}  // namespace dfm
