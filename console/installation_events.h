// The installation's own records: what the service writes under the tenant
// "default" without it belonging to that tenant. A key of one tenant reads
// its tenant's events (GET /v1/events) without them; a key of every tenant
// and the tools on the machine read them all (docs/http-api.md). Pure.
#pragma once

#include <set>
#include <string>

#include "events/event.h"
#include "storage/event_log.h"
#include "util/status.h"

namespace dfm {

// True of, under the tenant "default":
//   - a key of every tenant: its api_key.created and api_key.revoked, and
//     the admin.action (key.create, key.revoke) that made or revoked it;
//   - an admin.action "reload" (its summary names every tenant) or
//     "backup" (the whole data directory);
//   - a pause or resume of every tenant (sync_control, and its
//     admin.action whose target is "*/<system>");
//   - the log's own records (stream "log": restores).
// `all_tenant_keys`: the ids of the keys of every tenant (AllTenantKeyIds).
bool InstallationWide(const Event& e, const std::set<std::string>& all_tenant_keys);

// The ids of the keys of every tenant ever made in `log`.
Status AllTenantKeyIds(const EventLog& log, std::set<std::string>* out);

}  // namespace dfm
