// The replay tools' subcommands of `dfm` (docs/replay-tools.md):
//
//   dfm events [filters]           dfm events show ID
//   dfm trace REF                  dfm as-of T REF
//   dfm replay --from T [--to T]   dfm replay dead-letters
//   dfm projections status         dfm projections rebuild [NAME]
//   dfm audit opt-outs             dfm audit violations     dfm audit verify
//   dfm audit webhooks
//
// Every command reads the data directory as a RocksDB secondary (safe while
// the service runs) except `projections rebuild` (needs the service
// stopped) and `--execute` (asks the running service, or appends to a
// stopped one's log). Exit codes: 0 done / nothing found, 1 something
// found (differences, violations, a broken chain) or nothing to show, 2 an
// error.
//
// In cluster mode (docs/scale-out.md), given -c and no -d, they read a copy
// of the tenant's partition log taken from NATS (--tenant, else "default").
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "config/config.h"
#include "util/status.h"

namespace CLI {
class App;
}

namespace dfm {

class ReplayTools {
 public:
  // Adds the subcommands to `app`; `config_path` is the -c/--config value
  // the commands share with the rest of `dfm`.
  ReplayTools(CLI::App* app, std::string* config_path);
  ~ReplayTools();
  // The exit code when one of the subcommands was parsed; -1 otherwise.
  int Run();
  // Cluster mode: copies `tenant`'s partition log out of NATS (`dfm
  // cluster pull`) and sets *dir to the copy.
  using ClusterLogs = std::function<Status(const Config& config, const std::string& tenant, std::string* dir)>;
  void SetClusterLogs(ClusterLogs pull);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfm
