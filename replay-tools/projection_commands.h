// `dfm projections rebuild|status` and `dfm as-of`.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "replay-tools/tool_log.h"

namespace dfm {

// Checkpoint and lag behind the log head of every projection (and of the
// router, which is a consumer too). Read-only. Returns the exit code.
int RunProjectionsStatus(const EventLog& log, bool json, std::ostream& out, std::ostream& err);

// Drops `name` (every projection when empty) and folds the whole log again,
// printing progress (a bar, events/s) to `progress`. Needs the log to
// itself: the service must be stopped (RocksDB's lock says so). Returns the
// exit code.
int RunProjectionsRebuild(const std::string& data_dir, const std::string& name, bool json,
                          std::ostream& out, std::ostream& progress, std::ostream& err);

// The same on an open log (tests and the bench).
struct RebuildReport {
  uint64_t events = 0;
  double seconds = 0;
};
Status RebuildProjections(EventLog* log, const std::string& name, std::ostream* progress,
                          RebuildReport* report);

// The contacts' merged state, ids in each system, consent and unsettled
// pushes as the engine knew them at `at_us` (events recorded up to then).
int RunAsOf(const EventLog& log, int64_t at_us, const std::vector<ContactMatch>& contacts,
            bool json, bool reveal, std::ostream& out, std::ostream& err);

}  // namespace dfm
