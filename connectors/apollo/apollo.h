// Apollo.io (docs/vendors/apollo.md): the enrichment system. It keeps no
// contacts and sends no webhooks; it answers what it knows of a person and
// their company (push op "enrich"). Internal to this folder and its tests.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "connectors/common/probe.h"
#include "connectors/connector.h"

namespace dfm {

// answer.cc: Apollo's answers read into sync/fact.h names. A person's
// answer may carry its organization; "person": null or an empty or null
// "organization" is no match (empty map). False when the body is not
// JSON: an unreadable answer.
bool ReadApolloPerson(std::string_view body, std::map<std::string, std::string>* fields);
bool ReadApolloOrganization(std::string_view body, std::map<std::string, std::string>* fields);
// Whether an error answer says the team's credits are spent (422
// {"error": "Insufficient credits..."}).
bool ApolloCreditsSpent(const HttpResponse& r);
// "HTTP <status>: <the vendor's words>" (401's plain text, 4xx's "error"
// or "message").
std::string ApolloErrorDetail(const HttpResponse& r);

// client.cc: people match, then organization enrich when the person's
// answer named no company and the contact's domain is known; organizations
// are remembered by domain for a day in the client (a second contact of
// the same company costs no credit).
std::vector<SettingSpec> ApolloApiSettings();
std::unique_ptr<VendorClient> NewApolloClient(const SystemSettings& s, HttpClient* http);
Credentials ApolloCredentials(const SystemSettings& s);

const Connector& ApolloConnector();

// probe.cc: the key and its scopes, with lookups that find nobody (no
// credit is charged for them).
void ProbeApollo(const SystemSettings& s, const Credentials& c, HttpClient* http, ProbeCallback done);

}  // namespace dfm
