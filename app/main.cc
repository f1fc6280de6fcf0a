// dfm: the DF-Middleware command line. `dfm --help` lists the commands.
#include <CLI/CLI.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <iostream>
#include <optional>

#include "app/backfill_command.h"
#include "app/campaigns_command.h"
#include "app/backup_command.h"
#include "app/cluster_command.h"
#include "app/config_init.h"
#include "app/diagnose.h"
#include "app/erase_command.h"
#include "app/keys_command.h"
#include "app/reconcile_command.h"
#include "app/serve_cluster.h"
#include "app/serve_node.h"
#include "app/sync_command.h"
#include "app/unsubscribe_command.h"
#include "cluster/nats_client.h"
#include "cluster/pull.h"
#include "cluster/tls_probe.h"
#include "config/config.h"
#include "config/schema.h"
#include "connectors/connector.h"
#include "replay-tools/cli.h"
#include "replay-tools/log_commands.h"
#include "replay-tools/tool_log.h"
#include "storage/data_dir.h"
#include "util/logging.h"

namespace {


int PrintProblems(const std::vector<dfm::ConfigProblem>& problems, std::ostream& out) {
  int errors = 0;
  for (const auto& p : problems) {
    out << (p.error ? "error: " : "warning: ") << p.key << ": " << p.message << "\n";
    errors += p.error ? 1 : 0;
  }
  return errors;
}

// A command's configuration, or nullopt once its errors are printed.
std::optional<dfm::Config> LoadForCommand(const std::string& path) {
  std::vector<dfm::ConfigProblem> problems;
  dfm::Config c = dfm::Config::Load(path, dfm::Config::ProcessEnv(), &problems);
  if (PrintProblems(problems, std::cerr) > 0) return std::nullopt;
  return c;
}

int Serve(const std::string& config_path) {
  std::vector<dfm::ConfigProblem> problems;
  dfm::Config config = dfm::Config::Load(config_path, dfm::Config::ProcessEnv(), &problems);
  if (PrintProblems(problems, std::cerr) > 0) {
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

  auto* config_cmd = app.add_subcommand("config", "Check, show or start a configuration");
  config_cmd->require_subcommand(1);
  std::string check_path;
  auto* check = config_cmd->add_subcommand(
      "check", "Print every problem with its key; exit 1 if there is any");
  check->add_option("file", check_path, "TOML configuration file")->required();
  std::string show_path;
  auto* show = config_cmd->add_subcommand("show", "Print every key's resolved value (secrets hidden)");
  show->add_option("file", show_path, "TOML configuration file");
  std::string init_out;
  bool init_force = false;
  auto* init = config_cmd->add_subcommand("init", "Write a production configuration and its secrets file");
  init->add_option("--out", init_out, "the configuration file (FILE.env gets the secrets)")->required();
  init->add_flag("--force", init_force, "write over the files when they are there");
  auto* tmpl = config_cmd->add_subcommand("template", "Print the production template (packaging/dfm.toml)");
  std::string reference_update;
  auto* reference = config_cmd->add_subcommand("reference", "Print the keys' reference (docs/configuration.md)");
  reference->add_option("--update", reference_update, "rewrite the generated part of this Markdown file");

  auto* log_cmd = app.add_subcommand("log", "Verify or read the event log (safe while the service runs), or recover it");
  log_cmd->require_subcommand(1);
  std::string data_dir;
  bool json = false;
  auto* verify = log_cmd->add_subcommand("verify", "Walk the hash chain; report the first break");
  verify->add_option("-d,--data-dir", data_dir, "data directory (default: from config)");
  verify->add_option("-c,--config", config_path, "configuration file");
  verify->add_flag("--json", json, "print one JSON object");
  uint64_t from = 1, limit = UINT64_MAX;
  bool with_body = false;
  auto* dump = log_cmd->add_subcommand("dump", "Print events as JSON lines");
  dump->add_option("-d,--data-dir", data_dir, "data directory (default: from config)");
  dump->add_option("-c,--config", config_path, "configuration file");
  dump->add_option("--from", from, "first sequence number");
  dump->add_option("--limit", limit, "most events to print");
  dump->add_flag("--with-body", with_body, "include webhook headers and bodies, and decision payloads (personal data)");

  auto* recover = log_cmd->add_subcommand(
      "recover", "Open a log that lost acknowledged events, record the loss (service stopped)");
  recover->add_option("-d,--data-dir", data_dir, "data directory (default: from config)");
  recover->add_option("-c,--config", config_path, "configuration file");

  dfm::BackfillCommandArgs bf;
  auto* backfill = app.add_subcommand(
      "backfill", "Import the contacts a system already holds (through the running service, else here)");
  backfill->add_option("system", bf.system, dfm::BackfillSystems())->required();
  backfill->add_option("-c,--config", config_path, "configuration file");
  backfill->add_option("--tenant", bf.tenant, "tenant whose connector settings are used")
      ->capture_default_str();
  backfill->add_option("--page-size", bf.page_size, "contacts per list request")
      ->check(CLI::Range(1, 500))
      ->capture_default_str();
  backfill->add_flag("--restart", bf.restart, "start over instead of continuing an unfinished run");

  dfm::CampaignsCommandArgs camp;
  auto* campaigns = app.add_subcommand(
      "campaigns", "Campaigns through the running service: list, show ID, check ID, tasks ID");
  campaigns->add_option("action", camp.action, "list, show, check or tasks")
      ->required()
      ->check(CLI::IsMember({"list", "show", "check", "tasks"}));
  campaigns->add_option("id", camp.id, "the campaign (show, check, tasks)");
  campaigns->add_option("-c,--config", config_path, "configuration file");
  campaigns->add_option("--tenant", camp.tenant, "the campaign's tenant")->capture_default_str();
  campaigns->add_flag("--stuck", camp.stuck,
                      "tasks: only those in progress whose lease ran out or claimed an hour ago");
  campaigns->add_flag("--reset", camp.reset,
                      "tasks: give back those stuck now; the campaign's runner releases them")
      ->excludes("--stuck");
  campaigns->add_flag("--json", camp.json, "print the service's answer as it is");

  dfm::ReconcileArgs rc_args;
  auto* reconcile_cmd = app.add_subcommand(
      "reconcile", "Compare the opt-out registry with what each system holds now; --execute sets "
                   "the drift again (safe while the service runs)");
  reconcile_cmd->add_option("-c,--config", config_path, "configuration file");
  reconcile_cmd->add_option("--tenant", rc_args.tenant, "tenant to reconcile")->capture_default_str();
  reconcile_cmd->add_option("--since", rc_args.since,
                            "only opt-outs made since (2026-11-20T15:04:05Z, 2026-11-20, -7d)");
  reconcile_cmd->add_flag("--execute", rc_args.execute, "hand the re-applications to the service");
  reconcile_cmd->add_flag("--json", rc_args.json, "one JSON object per line");
  reconcile_cmd->add_option("--rate-share", rc_args.share,
                            "share of each system's rate limit to read at (default: "
                            "reconcile.rate_percent)")
      ->check(CLI::Range(0.01, 1.0));

  bool diagnose_json = false;
  auto* diagnose = app.add_subcommand(
      "diagnose", "Is everything set up and reachable? One line per check; exit 1 on any failure");
  diagnose->add_option("-c,--config", config_path, "configuration file");
  diagnose->add_flag("--json", diagnose_json, "one JSON object");

  dfm::KeysCommandArgs keys_args;
  auto* keys = app.add_subcommand("keys", "API keys for the HTTP API and the status page");
  keys->require_subcommand(1);
  auto* keys_create = keys->add_subcommand("create", "Make a key; its token is printed once");
  keys_create->add_option("-c,--config", config_path, "configuration file");
  keys_create->add_option("--name", keys_args.name, "what the key is for")->required();
  keys_create->add_option("--role", keys_args.role, "viewer, operator or admin")->capture_default_str();
  keys_create->add_option("--tenant", keys_args.tenant, "its tenant, or * for every one")
      ->capture_default_str();
  auto* keys_list = keys->add_subcommand("list", "Every key, revoked ones too (never their tokens)");
  keys_list->add_option("-c,--config", config_path, "configuration file");
  keys_list->add_flag("--json", keys_args.json, "JSON lines");
  auto* keys_revoke = keys->add_subcommand("revoke", "Revoke a key at once (its sessions end too)");
  keys_revoke->add_option("-c,--config", config_path, "configuration file");
  keys_revoke->add_option("id", keys_args.id, "the key's id (dfm keys list)")->required();

  dfm::UnsubscribeLinkArgs unsub_args;
  auto* unsub = app.add_subcommand(
      "unsubscribe-link", "An address's one-click unsubscribe link and mail headers (docs/email.md)");
  unsub->add_option("-c,--config", config_path, "configuration file");
  unsub->add_option("--email", unsub_args.email, "the recipient's address")->required();
  unsub->add_option("--tenant", unsub_args.tenant, "its tenant")->capture_default_str();
  unsub->add_option("--campaign", unsub_args.campaign, "the mailing it is for, recorded as the cause");
  unsub->add_flag("--json", unsub_args.json, "one JSON object");

  dfm::EraseArgs erase_args;
  auto* erase = app.add_subcommand(
      "erase", "Erase a person: destroy the keys of their data in the log (docs/privacy.md)");
  erase->add_option("-c,--config", config_path, "configuration file");
  erase->add_option("contact", erase_args.contact_id, "the contact id (dfm trace, the API)")->required();
  erase->add_option("--tenant", erase_args.tenant, "its tenant")->capture_default_str();
  erase->add_option("--reason", erase_args.reason, "why: recorded in the erasure event")->required();
  erase->add_flag("--json", erase_args.json, "one JSON object");

  auto* cluster = app.add_subcommand("cluster", "Cluster mode's logs and partitions (docs/scale-out.md)");
  cluster->require_subcommand(1);
  std::string pull_into, cluster_tenant;
  bool pull_json = false;
  auto* pull = cluster->add_subcommand(
      "pull", "Copy every partition's log from NATS into DIR/p<NNN>, for the log and replay tools");
  pull->add_option("-c,--config", config_path, "configuration file (its [cluster])");
  pull->add_option("--into", pull_into, "where the copies go (pulled again: only what is new)")->required();
  pull->add_flag("--json", pull_json, "one JSON object per partition");
  auto* part = cluster->add_subcommand("partition", "The partition a tenant lives in");
  part->add_option("-c,--config", config_path, "configuration file (its [cluster])");
  part->add_option("tenant", cluster_tenant, "tenant")->required();

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
  if (int rc = tools.Run(); rc >= 0) return rc;
  if (int rc = backups.Run(); rc >= 0) return rc;
  if (int rc = sync_commands.Run(); rc >= 0) return rc;

  auto resolve_data_dir = [&]() -> std::string {
    if (!data_dir.empty()) return data_dir;
    std::vector<dfm::ConfigProblem> problems;
    dfm::Config c = dfm::Config::Load(config_path, dfm::Config::ProcessEnv(), &problems);
    return c.data_dir();
  };

  if (serve->parsed()) return Serve(config_path);
  if (check->parsed()) {
    std::vector<dfm::ConfigProblem> problems;
    dfm::Config c = dfm::Config::Load(check_path, dfm::Config::ProcessEnv(), &problems);
    std::string loose = dfm::DescribeLooseModes(c.data_dir(), dfm::LooseModes(c.data_dir()));
    if (!loose.empty()) problems.push_back({"storage.data_dir", loose, false});
    // A tls:// URL with no CA is checked against the system's store.
    const dfm::ClusterSettings& cl = c.cluster();
    for (const auto& url : cl.enabled && cl.nats_ca_file.empty() ? cl.nats_urls : std::vector<std::string>{}) {
      if (url.rfind("tls://", 0) != 0) continue;
      dfm::Status probed = dfm::ProbeNatsTls(url, dfm::kSystemCaFile, 3000);
      if (probed.IsInvalidArgument())
        problems.push_back({"cluster.nats_ca_file", url + ": " + probed.message() +
                                                        "; give the CA that signed the servers' certificates"});
      else if (!probed.ok())
        problems.push_back({"cluster.nats_urls", probed.message() + "; its certificate was not checked", false});
    }
    // Any problem fails the check, a warning too: a `DFM_*` variable that
    // matches no key is most often a secret given under a mistyped name,
    // which `dfm serve` would run without; a data directory others may
    // read gives away what the service keeps.
    PrintProblems(problems, std::cout);
    if (problems.empty()) std::cout << check_path << ": OK\n";
    return problems.empty() ? 0 : 1;
  }
  if (init->parsed()) {
    std::string said;
    dfm::Status is = dfm::WriteProductionConfig(init_out, init_force, &said);
    if (!is.ok()) {
      std::cerr << "dfm config init: " << is.ToString() << "\n";
      return 2;
    }
    std::cout << said;
    return 0;
  }
  if (tmpl->parsed()) {
    std::cout << dfm::ProductionTemplate();
    return 0;
  }
  if (reference->parsed()) return dfm::RunConfigReference(reference_update, std::cout, std::cerr);
  if (show->parsed()) {
    std::vector<dfm::ConfigProblem> problems;
    dfm::Config c = dfm::Config::Load(show_path, dfm::Config::ProcessEnv(), &problems);
    for (const auto& [k, v] : c.Describe())
      std::cout << k << " = \"" << v << "\"    # " << dfm::Config::EnvName(k)
                << (dfm::ApplyOf(k) == dfm::KeyEffect::kRestart ? ", restart to change" : "") << "\n";
    return PrintProblems(problems, std::cerr) > 0 ? 1 : 0;
  }
  if (campaigns->parsed()) {
    if (camp.action != "list" && camp.id.empty()) {
      std::cerr << "dfm campaigns " << camp.action << ": which campaign? (dfm campaigns list)\n";
      return 2;
    }
    std::optional<dfm::Config> loaded = LoadForCommand(config_path);
    if (!loaded) return 2;
    return dfm::RunCampaignsCommand(*loaded, camp, std::cout, std::cerr);
  }
  if (backfill->parsed()) {
    std::optional<dfm::Config> loaded = LoadForCommand(config_path);
    if (!loaded) return 2;
    const dfm::Config& c = *loaded;
    dfm::InitLogging(c.log_level());
    return dfm::RunBackfillCommand(c, bf, std::cout, std::cerr);
  }
  if (reconcile_cmd->parsed()) {
    std::optional<dfm::Config> loaded = LoadForCommand(config_path);
    if (!loaded) return 2;
    dfm::InitLogging(loaded->log_level());
    if (loaded->cluster().enabled)
      rc_args.open_log = [&loaded, &rc_args](std::unique_ptr<dfm::RocksDbEventLog>* log, std::string* where) {
        return dfm::OpenFoldedTenantCopy(*loaded, rc_args.tenant, where, log);
      };
    return dfm::RunReconcileCommand(*loaded, rc_args, std::cout, std::cerr);
  }
  if (diagnose->parsed()) return dfm::RunDiagnose(config_path, diagnose_json, std::cout);
  if (keys->parsed()) {
    std::optional<dfm::Config> loaded = LoadForCommand(config_path);
    if (!loaded) return 2;
    const dfm::Config& c = *loaded;
    if (keys_create->parsed()) return dfm::RunKeysCreate(c, keys_args, std::cout, std::cerr);
    if (keys_list->parsed()) return dfm::RunKeysList(c, keys_args, std::cout, std::cerr);
    return dfm::RunKeysRevoke(c, keys_args, std::cout, std::cerr);
  }
  if (erase->parsed()) {
    std::optional<dfm::Config> loaded = LoadForCommand(config_path);
    if (!loaded) return 2;
    return dfm::RunErase(*loaded, erase_args, std::cout, std::cerr);
  }
  if (unsub->parsed()) {
    std::optional<dfm::Config> loaded = LoadForCommand(config_path);
    if (!loaded) return 2;
    const dfm::Config& c = *loaded;
    return dfm::RunUnsubscribeLink(c, unsub_args, std::time(nullptr), std::cout, std::cerr);
  }
  if (cluster->parsed()) {
    std::optional<dfm::Config> loaded = LoadForCommand(config_path);
    if (!loaded) return 2;
    const dfm::Config& c = *loaded;
    if (pull->parsed()) return dfm::RunClusterPull(c, pull_into, pull_json, std::cout, std::cerr);
    return dfm::RunClusterPartition(c, cluster_tenant, std::cout);
  }
  if (verify->parsed()) return dfm::RunLogVerify(resolve_data_dir(), json, std::cout, std::cerr);
  if (recover->parsed()) return dfm::RunLogRecover(resolve_data_dir(), std::cout, std::cerr);
  if (dump->parsed()) {
    return dfm::RunLogDump(resolve_data_dir(), from, limit, with_body, std::cout, std::cerr);
  }
  return 0;
}
