#include "config/schema.h"

#include <algorithm>
#include <cctype>
#include <sstream>
#include <type_traits>

#include "config/config.h"
#include "config/schema_rows.h"
#include "connectors/connector.h"
#include "sync/contact_model.h"
#include "util/strings.h"

namespace dfm {
namespace {

using namespace schema_rows;

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The systems that may own a field: those whose edits of a contact arrive
// (webhooks) or that hold contacts; an enrichment system only fills empty
// fields, and a messages-only one (WhatsApp, Genesys) knows a person by
// number.
std::vector<std::string> OwnerSystems() {
  std::vector<std::string> out;
  for (const Connector* con : Connectors())
    if (con->holds_contacts && (con->map_webhook || !con->accepted_fields.empty()))
      out.push_back(con->system);
  std::sort(out.begin(), out.end());
  return out;
}

KeySpec OwnerKey(const std::string& field, const MergePolicy& builtin) {
  auto it = builtin.owner.find(field);
  KeySpec k = Text("", it == builtin.owner.end() ? "" : it->second.c_str(), kReload,
                   [field](GlobalSettings& s, const KeyValue& v) { s.sync.owners[field] = v.text; },
                   "the system whose edits of the field win; `\"\"`: the newer source time wins");
  k.key = "sync.owners." + field;
  return std::move(k).Check([](const KeyValue& v) -> std::string {
    const auto systems = OwnerSystems();
    if (v.text.empty() || std::count(systems.begin(), systems.end(), v.text)) return "";
    return "must be one of " + JoinNames(systems) + ", or \"\" for no owner";
  });
}

std::string RoleCheck(Role r, const KeyValue& v) {
  const std::string& system = v.text;
  const Connector* con = system.empty() ? nullptr : FindConnector(system);
  if (system.empty() || (con != nullptr && con->CanPlay(r))) return "";
  std::vector<std::string> can;
  for (const Connector* other : Connectors())
    if (other->CanPlay(r)) can.push_back(other->system);
  const std::string role(RoleName(r));
  return (con ? system + " cannot play the " + role + " role" : "unknown system '" + system + "'") +
         "; it may be one of " + (can.empty() ? "none" : JoinNames(can)) + ", or \"\" for nobody";
}

KeySpec RoleKey(const std::string& key, Role r, const std::string& def, Setter set) {
  KeySpec k = Text("", def.c_str(), kReload, std::move(set),
                   "the system that plays the role; `\"\"`: nobody");
  k.key = key;
  return std::move(k).Check([r](const KeyValue& v) { return RoleCheck(r, v); });
}

// A connector's setting as a key of the schema.
KeySpec ConnectorKey(const std::string& key, const SettingSpec& s) {
  KeySpec k;
  k.key = key;
  k.type = s.whole_number ? KeyType::kWholeNumber : KeyType::kText;
  k.default_value = s.default_value;
  k.apply = kReload;
  k.doc = s.help;
  k.secret = s.secret;
  k.min = 0;
  k.max = INT64_MAX / 1000000;  // milliseconds that still fit in microseconds
  return k;
}

bool ParseInt(const std::string& s, int64_t lo, int64_t hi, int64_t* v) {
  try {
    size_t pos = 0;
    long long x = std::stoll(s, &pos);
    if (pos != s.size() || x < lo || x > hi) return false;
    *v = x;
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

std::vector<KeySpec> AllKeys(const std::vector<std::string>& tenants) {
  std::vector<KeySpec> out = GlobalKeys();
  const MergePolicy builtin = BuiltinMergePolicy();
  for (const auto& f : MergeableFields()) out.push_back(OwnerKey(f, builtin));
  for (Role r : AllRoles()) {
    const std::string role(RoleName(r));
    out.push_back(RoleKey("sync.roles." + role, r, BuiltinRole(role),
                          [role](GlobalSettings& s, const KeyValue& v) { s.sync.roles[role] = v.text; }));
  }
  for (const auto& tenant : tenants) {
    const std::string prefix = tenant == "default" ? "" : "tenants." + tenant + ".";
    for (const Connector* con : Connectors())
      for (const auto& s : con->settings) out.push_back(ConnectorKey(prefix + con->system + "." + s.key, s));
    if (tenant == "default") continue;
    for (Role r : AllRoles()) out.push_back(RoleKey(prefix + "roles." + std::string(RoleName(r)), r, "", nullptr));
    KeySpec hold = Flag("", "", kReload, nullptr, "the tenant's own consent.staff_opt_outs_hold");
    hold.key = prefix + "consent.staff_opt_outs_hold";
    out.push_back(std::move(hold).EmptyOk());
  }
  return out;
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string ReadValue(const KeySpec& spec, const std::string& text, KeyValue* out) {
  *out = KeyValue{};
  out->text = text;
  if (text.empty() && spec.empty_ok) return "";
  switch (spec.type) {
    case KeyType::kText:
      break;
    case KeyType::kWholeNumber:
      if (!ParseInt(text, spec.min, spec.max, &out->number))
        return spec.max == INT64_MAX / 1000000 ? "must be a whole number"
                                               : "must be a whole number from " + std::to_string(spec.min) +
                                                     " to " + std::to_string(spec.max);
      break;
    case KeyType::kBool:
      if (text != "true" && text != "false") return "must be true or false";
      out->flag = text == "true";
      break;
    case KeyType::kList:
      out->items = SplitList(text);
      break;
    case KeyType::kListen: {
      const size_t colon = text.rfind(':');
      int64_t port = 0;
      if (colon == std::string::npos || colon == 0 || !ParseInt(text.substr(colon + 1), 0, 65535, &port))
        return "must be host:port, e.g. " + spec.default_value;
      std::string host = text.substr(0, colon);
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
      out->host = host;
      out->port = static_cast<uint16_t>(port);
      break;
    }
    case KeyType::kChoice:
      if (std::find(spec.choices.begin(), spec.choices.end(), text) == spec.choices.end())
        return "must be one of " + JoinNames(spec.choices);
      break;
  }
  return spec.check ? spec.check(*out) : "";
}

KeyEffect ApplyOf(const std::string& key) {
  for (const auto& k : GlobalKeys())
    if (k.key == key) return k.apply;
  return KeyEffect::kReload;  // the families: owners, roles, tenants' systems
}

}  // namespace dfm
