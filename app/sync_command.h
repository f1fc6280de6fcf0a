// `dfm sync pause|resume|status` (docs/operations.md, "Stop all sync
// operations"):
//
//   dfm sync pause [--tenant T] [--system S] [--reason TEXT]
//   dfm sync resume [--tenant T] [--system S] [--concurrency N]
//   dfm sync status
//
// Asks the running service (POST /v1/admin/sync/pause|resume, GET
// /v1/admin/sync) with the data directory's admin token. With no service
// running, pause and resume append their event to the log themselves: the
// service folds it when it starts (a service started paused sends nothing).
//
// Exit codes: 0 done, 2 an error.
#pragma once

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace dfm {

class SyncCommands {
 public:
  // Adds the subcommands to `app`; `config_path` is the shared -c value.
  SyncCommands(CLI::App* app, std::string* config_path);
  ~SyncCommands();
  // The exit code when one of the subcommands was parsed; -1 otherwise.
  int Run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfm
