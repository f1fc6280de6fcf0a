// dfm: the DF-Middleware command line. `dfm --help` lists the commands.
#include <CLI/CLI.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <iostream>

#include "app/backup_command.h"
#include "app/cluster_command.h"
#include "app/command_groups.h"
#include "app/serve_cluster.h"
#include "app/serve_node.h"
#include "app/sync_command.h"
#include "cluster/pull.h"
#include "config/config.h"
#include "connectors/connector.h"
#include "replay-tools/cli.h"
#include "replay-tools/tool_log.h"
#include "storage/data_dir.h"
#include "util/logging.h"

namespace {

int Serve(const std::string& config_path) {
  std::vector<dfm::ConfigProblem> problems;
  dfm::Config config = dfm::Config::Load(config_path, dfm::Config::ProcessEnv(), &problems);
  if (dfm::PrintConfigProblems(problems, std::cerr) > 0) {
    std::cerr << "dfm serve: configuration has errors; see `dfm config check`\n";
    return 2;
  }
  dfm::InitLogging(config.log_level());
  auto logger = dfm::Logger("main");
  std::string loose =
      dfm::DescribeLooseModes(config.data_dir(), dfm::LooseModes(config.data_dir()));
  if (!loose.empty()) logger->warn("event=data_dir_open_to_others detail=\"{}\"", loose);
  if (config.cluster().enabled) return dfm::ServeCluster(config, config_path);
  return dfm::ServeNode(config, config_path);
}

}  // namespace

int main(int argc, char** argv) {
  // Whatever dfm creates (the data directory, RocksDB's files, the admin
  // token, the high-water mark) is its owner's alone: it holds webhook
  // bodies with personal data and OAuth grants.
  ::umask(077);
  CLI::App app{"DF-Middleware: keeps " + dfm::ConnectorNames() + " in agreement"};
  app.set_version_flag("--version", dfm::VersionText());
  app.require_subcommand(1);

  std::string config_path;
  if (const char* env = std::getenv("DFM_CONFIG")) config_path = env;

  auto* serve = app.add_subcommand("serve", "Run the service");
  serve->add_option("-c,--config", config_path, "TOML configuration file (or $DFM_CONFIG)");
  dfm::ConfigCommands config_commands(&app);
  dfm::OperatorCommands operator_commands(&app, &config_path);
  dfm::AdminCommands admin_commands(&app, &config_path);
  dfm::ReplayTools tools(&app, &config_path);
  tools.SetClusterLogs(dfm::PullTenantLog);
  dfm::SetCopyKeys([&config_path](const std::string& dir, std::shared_ptr<dfm::KeyStore>* out) {
    std::vector<dfm::ConfigProblem> problems;
    dfm::Config c = dfm::Config::Load(config_path, dfm::Config::ProcessEnv(), &problems);
    if (!c.cluster().enabled) return dfm::Status::NotFound("not a cluster node's configuration");
    return dfm::OpenPulledKeys(c.cluster(), dir, out);
  });
  dfm::BackupCommands backups(&app, &config_path);
  dfm::SyncCommands sync_commands(&app, &config_path);

  CLI11_PARSE(app, argc, argv);
  if (serve->parsed()) return Serve(config_path);
  if (int rc = tools.Run(); rc >= 0) return rc;
  if (int rc = backups.Run(); rc >= 0) return rc;
  if (int rc = sync_commands.Run(); rc >= 0) return rc;
  if (int rc = config_commands.Run(); rc >= 0) return rc;
  if (int rc = operator_commands.Run(); rc >= 0) return rc;
  if (int rc = admin_commands.Run(); rc >= 0) return rc;
  return 0;
}
