// An identity.conflict for settlement tests: a GoHighLevel webhook (seq 1)
// matching contact-a by phone and contact-b by email, in `tenant`.
#pragma once

#include <string>

#include "storage/event_log.h"
#include "sync/domain_event.h"

namespace dfm::testing {

inline Status AppendIdentityConflict(EventLog* log, const std::string& tenant, AppendOutcome* out) {
  DomainEvent c;
  c.type = std::string(ev::kIdentityConflict);
  c.system = "ghl";
  c.candidates = {{"contact-a", "phone"}, {"contact-b", "email"}};
  c.webhook_seq = 1;
  return log->Append(ToDraft(c, tenant, SourceStream("ghl"), EventId(), EventId()), out);
}

}  // namespace dfm::testing
