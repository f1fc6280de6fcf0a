// `dfm audit consent-conflicts`: every staff or system opt-in the engine
// refused because the person's (or the carrier's) opt-out holds
// (consent.conflict, docs/sync-rules.md "Who may undo an opt-out"), and
// whether the opt-out was set again where it was lifted. Each is for a
// person to look at. Read-only; phone numbers and emails unmasked (the
// auditor's record, like `dfm audit opt-outs`).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "storage/event_log.h"

namespace dfm {

struct ConsentConflictRecord {
  std::string tenant, contact_id, phone, email;
  std::string system;   // where the opt-in was tried
  std::string actor;    // who tried: "staff"
  std::string channel;  // the channels refused
  std::string reason;   // what they did ("dndSettings", "is_dnc")
  std::string record;   // that system's id of the contact or record
  std::string detail;   // which opt-out holds
  int64_t at_us = 0;        // when they tried (source time, else recorded)
  int64_t recorded_us = 0;  // when the engine recorded it
  std::string event_id;
  // The opt_out push that sets it again there: "succeeded", "dead",
  // "pending", or "none" (the system takes no pushes); and when it succeeded.
  std::string set_again = "none";
  int64_t set_again_at_us = 0;
};

Status CollectConsentConflicts(const EventLog& log, const std::string& tenant,
                               std::vector<ConsentConflictRecord>* out);
// One JSON object per line, or a table. Returns the exit code: 0 none, 1 some.
int PrintConsentConflicts(const std::vector<ConsentConflictRecord>& records, bool json,
                          std::ostream& out);

}  // namespace dfm
