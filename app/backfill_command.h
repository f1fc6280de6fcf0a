// `dfm backfill SYSTEM`: the command around RunBackfill (app/backfill.h).
// It opens the data directory for writing, so the service must be stopped;
// the service syncs what was imported when it starts again. Refused in
// cluster mode (exit 2), where no partition reads that directory.
#pragma once

#include <iosfwd>
#include <string>

#include "config/config.h"

namespace dfm {

struct BackfillCommandArgs {
  std::string system;
  std::string tenant = "default";
  int page_size = 100;
  bool restart = false;
};

// Progress on `err` (one line a second; rewritten in place on a terminal),
// the summary on `out`. Returns the exit code: 0 done, 1 failed (what was
// read is kept, the same command continues), 2 usage or configuration.
int RunBackfillCommand(const Config& config, const BackfillCommandArgs& args, std::ostream& out,
                       std::ostream& err);

// The systems that can be backfilled, and how, for help texts:
// "ghl (list API), aloware (looked up by known phones)".
std::string BackfillSystems();

}  // namespace dfm
