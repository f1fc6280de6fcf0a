// Conflicts as the sync appends them, for tests of what reads them.
#pragma once

#include <string>

#include "storage/event_log.h"
#include "sync/domain_event.h"

namespace dfm::testing {

// An identity.conflict for settlement tests: a GoHighLevel webhook (seq 1)
// matching contact-a by phone and contact-b by email, in `tenant`.
inline Status AppendIdentityConflict(EventLog* log, const std::string& tenant, AppendOutcome* out) {
  DomainEvent c;
  c.type = std::string(ev::kIdentityConflict);
  c.system = "ghl";
  c.candidates = {{"contact-a", "phone"}, {"contact-b", "email"}};
  c.webhook_seq = 1;
  return log->Append(ToDraft(c, tenant, SourceStream("ghl"), EventId(), EventId()), out);
}

// A consent.conflict: staff in GoHighLevel tried to opt `contact`'s sms
// back in after the person's STOP, in `tenant`.
inline Status AppendConsentConflict(EventLog* log, const std::string& tenant,
                                    const std::string& contact) {
  DomainEvent d;
  d.type = std::string(ev::kConsentConflict);
  d.contact_id = contact;
  d.system = "ghl";
  d.actor = "staff";
  d.channel = "sms";
  d.reason = "dndSettings";
  d.detail = "opted out by keyword STOP via verity";
  AppendOutcome out;
  return log->Append(ToDraft(d, tenant, ContactStream(contact), {}, {}), &out);
}

}  // namespace dfm::testing
