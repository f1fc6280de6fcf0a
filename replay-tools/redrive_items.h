// What a re-drive request posted to the service may ask (POST
// /v1/admin/replay): only a contact's own dead-lettered or missing pushes,
// each rebuilt from the log. A posted item was taken as it came: a text
// body of the caller's choosing, and no first-asked time (so no age limit).
//
// An item names its contact, its cause and the push's system and op; all
// else it carries is ignored. Its cause must be, in the request's tenant:
// - a push.requested on that contact's stream, dead-lettered since, and not
//   named by any replay.requested since (not re-driven yet): the item is
//   that push as it was asked, first asked for when it was (a re-drive's
//   own re-drive: when the first one was);
// - a webhook.received (or contact.imported) whose replay (PlanReplay over
//   that webhook, that contact and system) finds a missing push of that
//   system and op: the item is that push, first asked for when the webhook
//   was recorded;
// - any other event of the tenant (the one that opted the person out) when
//   the item's op is "opt_out" (`dfm reconcile --execute`): the item is an
//   opt_out of its channels to its system for that contact, which must
//   have a stream; DecideRedrive sends it only while the person is still
//   opted out of them.
// Pure reads of the log; no actor, no HTTP.
#pragma once

#include <string>

#include "replay-tools/replay.h"
#include "storage/event_log.h"
#include "sync/redrive.h"
#include "util/status.h"

namespace dfm {

// `rebuilt` gets `posted`'s reason and every item rebuilt, in order. The
// first item that cannot be rebuilt fails the whole request:
// InvalidArgument saying which item and why (nothing to append); other
// errors are the log's. `base` supplies the mappers and rules (its window,
// contacts, system and tenant are set here per item).
Status RebuildRedriveItems(const EventLog& log, const std::string& tenant,
                           const ReplayRequest& posted, const ReplayOptions& base,
                           ReplayRequest* rebuilt);

}  // namespace dfm
