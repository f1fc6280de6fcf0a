// `dfm reconcile [--tenant T] [--since T] [--execute]` (app/reconcile.h):
// safe while the service runs (it reads the log as a secondary and the
// vendors at a share of each system's rate limit). Progress on stderr, the
// drift on stdout; --execute hands the re-applications to the service
// (POST /v1/admin/replay), or appends them when no service runs.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>

#include "config/config.h"
#include "storage/rocksdb_event_log.h"

namespace dfm {

struct ReconcileArgs {
  std::string tenant = "default";
  std::string since;    // a tool time (replay-tools/tool_log.h); "": every opt-out
  bool execute = false;
  bool json = false;
  double share = -1;    // of each system's rate limit; < 0: reconcile.rate_share
  // Cluster mode: opens the copy of the tenant's partition, its projections
  // folded (app/cluster_command.h), dropped again after the run; null: the
  // data directory's log.
  std::function<Status(std::unique_ptr<RocksDbEventLog>* log, std::string* where)> open_log;
};

// Exit code: 0 no drift (or drift handed over with --execute), 1 drift
// found (dry run) or checks left unread, 2 usage, configuration or log.
int RunReconcileCommand(const Config& config, const ReconcileArgs& args, std::ostream& out,
                        std::ostream& err);

}  // namespace dfm
