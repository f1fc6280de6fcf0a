// Apollo's descriptor (connectors/connector.h).
#include "connectors/apollo/apollo.h"
#include "connectors/common/outbound.h"

namespace dfm {

namespace {

Connector Make() {
  Connector c;
  c.system = "apollo";
  c.name = "Apollo";
  c.settings = ApolloApiSettings();
  c.outbound_enabled = HasApiBaseUrl;
  c.client = NewApolloClient;
  c.credentials = ApolloCredentials;
  c.probe = ProbeApollo;
  // No accepted_fields: it holds no contacts, so it is never a sync target.
  c.roles = {Role::kEnrichment};
  c.default_roles = {Role::kEnrichment};
  return c;
}

}  // namespace

const Connector& ApolloConnector() {
  static const Connector kConnector = Make();
  return kConnector;
}

}  // namespace dfm
