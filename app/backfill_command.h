// `dfm backfill SYSTEM`: asks the running service to backfill (POST
// /v1/admin/backfill: its connector actor reads the vendor, in a cluster on
// the node of the tenant's partition) and follows the run until it ends.
// With no service answering it runs here, on the data directory (single
// node only), and the service syncs what was imported when it starts.
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
