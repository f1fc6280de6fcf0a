// `dfm conflicts`: identity conflicts and their settlements
// (sync/settle.h).
//
//   dfm conflicts [--tenant T] [--open]      the list; exit 1 when any is open
//   dfm conflicts settle SEQ --contact ID    the fact goes to that candidate
//   dfm conflicts settle SEQ --dismiss       the fact concerns neither
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "storage/event_log.h"
#include "sync/settle.h"

namespace dfm {

struct ConflictRow {
  uint64_t seq = 0;  // the identity.conflict event
  int64_t recorded_at_us = 0;
  std::string tenant, system, external_id;
  std::vector<std::pair<std::string, std::string>> candidates;  // contact id, matched by
  std::map<std::string, std::string> fields;
  uint64_t webhook_seq = 0;
  // Its settlement, if any: the identity.settled event, the contact chosen
  // (empty: dismissed) and the note.
  uint64_t settled_seq = 0;
  std::string chosen, reason;
};

// Every identity.conflict in the log (of `tenant` unless empty), oldest
// first, with its settlement; only those not settled when `open_only`.
Status FindConflicts(const EventLog& log, const std::string& tenant, bool open_only,
                     std::vector<ConflictRow>* out);

// A table (fields masked unless `reveal`) or JSON lines. Returns 1 when any
// conflict listed is open, else 0.
int PrintConflicts(const std::vector<ConflictRow>& rows, bool json, bool reveal, std::ostream& out);

// Hands the settlement to the service: POST <base_url>/v1/admin/settle with
// the data directory's admin token when the service runs; otherwise reads
// the conflict and appends the identity.settled event to the log directly
// (the service carries it out when it starts). *how says which, *seq is the
// settlement's sequence number, *duplicate says the conflict had been
// settled before (by the settlement at *seq, whatever this one chose).
// InvalidArgument when the conflict or the contact is not one the service
// would take.
Status SubmitSettlement(const std::string& data_dir, const std::string& base_url,
                        const std::string& tenant, const SettleRequest& request, std::string* how,
                        uint64_t* seq, bool* duplicate);

}  // namespace dfm
