#include "console/installation_events.h"

#include <simdjson.h>

#include "console/api_keys.h"
#include "replay-tools/log_commands.h"
#include "sync/sync_control.h"

namespace dfm {

namespace {

std::string Field(simdjson::dom::object& o, const char* key) {
  std::string_view v;
  return o[key].get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
}

}  // namespace

bool InstallationWide(const Event& e, const std::set<std::string>& all_tenant_keys) {
  if (e.tenant != "default") return false;
  if (e.stream == kLogStream) return true;
  const bool key = e.stream == kApiKeysStream;
  const bool control = e.stream == kSyncControlStream;
  const bool action = e.stream == "admin" && e.type == "admin.action";
  if ((!key && !control && !action) || e.sealing != Event::Sealing::kClear) return false;
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (parser.parse(e.payload.data(), e.payload.size()).get(o) != simdjson::SUCCESS) return false;
  if (key)
    return Field(o, "tenant") == kAllTenants || all_tenant_keys.count(Field(o, "key_id")) > 0;
  if (control) return Field(o, "tenant") == kEverything;
  const std::string what = Field(o, "action");
  const std::string target = Field(o, "target");
  if (what == "reload" || what == "backup") return true;
  if (what == "key.create" || what == "key.revoke") return all_tenant_keys.count(target) > 0;
  if (what == "sync.pause" || what == "sync.resume") return target.rfind("*/", 0) == 0;
  return false;
}

Status AllTenantKeyIds(const EventLog& log, std::set<std::string>* out) {
  return log.ScanStream("default", std::string(kApiKeysStream), [&](const Event& e) {
    if (e.type != kApiKeyCreated || e.sealing != Event::Sealing::kClear) return true;
    simdjson::dom::parser parser;
    simdjson::dom::object o;
    if (parser.parse(e.payload.data(), e.payload.size()).get(o) == simdjson::SUCCESS &&
        Field(o, "tenant") == kAllTenants)
      out->insert(Field(o, "key_id"));
    return true;
  });
}

}  // namespace dfm
