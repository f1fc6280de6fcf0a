// The `dfm` commands main.cc composes, a group per class in the manner of
// BackupCommands (app/backup_command.h): each adds its subcommands to the
// command line, and its Run() answers the exit code when one of them was
// parsed, -1 otherwise. `config_path` is the -c value every command shares.
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "config/config.h"

namespace CLI {
class App;
}

namespace dfm {

// Prints each problem ("error: key: message" or "warning: ..."); the number
// of errors.
int PrintConfigProblems(const std::vector<ConfigProblem>& problems, std::ostream& out);
// A command's configuration, or nullopt once its errors are on stderr.
std::optional<Config> LoadCommandConfig(const std::string& path);

// `dfm config check|show|init|template|reference`.
class ConfigCommands {
 public:
  explicit ConfigCommands(CLI::App* app);
  ~ConfigCommands();
  int Run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `dfm log verify|dump|recover`, `backfill`, `campaigns`, `reconcile`,
// `diagnose`: reading the log and working beside the service.
class OperatorCommands {
 public:
  OperatorCommands(CLI::App* app, std::string* config_path);
  ~OperatorCommands();
  int Run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `dfm keys create|list|revoke`, `erase`, `unsubscribe-link`, `cluster
// pull|partition`: keys, people and partitions.
class AdminCommands {
 public:
  AdminCommands(CLI::App* app, std::string* config_path);
  ~AdminCommands();
  int Run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfm
