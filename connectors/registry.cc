#include <algorithm>
#include <mutex>

#include "connectors/connector.h"
#include "events/webhook_received.h"

namespace dfm {

// connectors/CMakeLists.txt generates it from its one list.
const std::vector<const Connector*>& BuiltinConnectors();

namespace {

std::vector<const Connector*>& Registered() {
  static std::vector<const Connector*> extra;
  return extra;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kConversations: return "conversations";
    case Role::kSender: return "sender";
    case Role::kLists: return "lists";
    case Role::kEnrichment: return "enrichment";
    case Role::kClassifier: return "classifier";
  }
  return "";
}

const std::vector<Role>& AllRoles() {
  static const std::vector<Role> kAll = {Role::kConversations, Role::kSender, Role::kLists,
                                             Role::kEnrichment, Role::kClassifier};
  return kAll;
}

bool Connector::CanPlay(Role r) const {
  return std::find(roles.begin(), roles.end(), r) != roles.end();
}

const std::vector<const Connector*>& Connectors() {
  // Built once, on first use: RegisterConnector must come before it.
  static const std::vector<const Connector*> kAll = [] {
    std::vector<const Connector*> all = BuiltinConnectors();
    for (const Connector* c : Registered()) all.push_back(c);
    return all;
  }();
  return kAll;
}

void RegisterConnector(const Connector* connector) { Registered().push_back(connector); }

const Connector* FindConnector(std::string_view system) {
  for (const Connector* c : Connectors())
    if (c->system == system) return c;
  return nullptr;
}

std::string ConnectorSystems() {
  std::string out;
  for (const Connector* c : Connectors()) out += (out.empty() ? "" : ", ") + c->system;
  return out;
}

std::string ConnectorNames() {
  std::string out;
  const auto& all = Connectors();
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0) out += i + 1 == all.size() ? " and " : ", ";
    out += all[i]->name;
  }
  return out;
}

const InboundMapper* FindMapperFor(std::string_view event_type, std::string_view system) {
  const Connector* c = FindConnector(system);
  if (c == nullptr) return nullptr;
  const InboundMapper* m = event_type == WebhookReceived::kType   ? &c->map_webhook
                           : event_type == kContactImportedType ? &c->map_import
                                                                : nullptr;
  return m != nullptr && *m ? m : nullptr;
}

}  // namespace dfm
