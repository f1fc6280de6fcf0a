// HaloPSA (docs/vendors/halopsa.md): contacts are HaloPSA Users, each under
// a Client (company) and one of its Sites. The pieces connector.cc puts
// together into its descriptor. Internal to this folder and its tests.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "connectors/common/mapper.h"
#include "connectors/common/probe.h"
#include "connectors/connector.h"

namespace dfm {

// webhook.cc: Basic auth (or none, when allowed), body.id as the event id.
std::vector<SettingSpec> HaloWebhookSettings();
std::unique_ptr<WebhookSource> NewHaloWebhookSource(const SystemSettings& s,
                                                    std::vector<SettingProblem>* problems);

// custom_fields.cc: `custom_fields = "linkedin_url=CFLinkedIn, industry=CFIndustry"`:
// our field -> the HaloPSA custom field's name. An empty map for an empty
// setting; nullopt with *problem for one that does not read.
using HaloCustomFields = std::map<std::string, std::string>;
std::optional<HaloCustomFields> ParseHaloCustomFields(const std::string& setting, std::string* problem);
// What a mapped custom field must be in HaloPSA (FieldInfo): "" when `type`
// (and `inputtype`) can hold `field`'s values, else why not.
std::string HaloFieldTypeProblem(const std::string& field, int type, int inputtype);

// mapper.cc: users from webhooks ("new user created", "user updated":
// `user_events`) and from `dfm backfill` (a Users object).
Status MapHaloWebhook(const WebhookReceived& w, const MapperSettings& s, std::vector<ContactFact>* out);
Status MapHaloImport(const WebhookReceived& w, const MapperSettings& s, std::vector<ContactFact>* out);

// client.cc: OAuth2 client credentials, users (search before create),
// their client and site, custom fields; the users list for backfill.
std::vector<SettingSpec> HaloApiSettings();
std::unique_ptr<VendorClient> NewHaloClient(const SystemSettings& s, HttpClient* http);
Credentials HaloCredentials(const SystemSettings& s);
// The token request of a client credentials grant ({auth_url}/token,
// ?tenant= for a hosted instance), and its answer read.
HttpRequest HaloTokenRequest(const SystemSettings& s);
TokenGrant ReadHaloToken(const HttpResponse& resp);
// "HTTP <status>: <HaloPSA's words>" from its several error shapes.
std::string HaloErrorDetail(const HttpResponse& r);

const Connector& HaloConnector();

// probe.cc: the client credentials, and every mapped custom field.
void ProbeHalo(const SystemSettings& s, const Credentials& c, HttpClient* http, ProbeCallback done);

}  // namespace dfm
