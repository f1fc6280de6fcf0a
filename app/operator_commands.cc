// `dfm log ...`, `backfill`, `campaigns`, `reconcile`, `diagnose`
// (app/command_groups.h).
#include <CLI/CLI.hpp>
#include <iostream>

#include "app/backfill_command.h"
#include "app/campaigns_command.h"
#include "app/cluster_command.h"
#include "app/command_groups.h"
#include "app/diagnose.h"
#include "app/reconcile_command.h"
#include "replay-tools/log_commands.h"
#include "util/logging.h"

namespace dfm {

struct OperatorCommands::Impl {
  std::string* config_path = nullptr;
  std::string data_dir;
  bool json = false, with_body = false, diagnose_json = false;
  uint64_t from = 1, limit = UINT64_MAX;
  BackfillCommandArgs bf;
  CampaignsCommandArgs camp;
  ReconcileArgs rc;
  CLI::App *verify = nullptr, *dump = nullptr, *recover = nullptr, *backfill = nullptr,
           *campaigns = nullptr, *reconcile = nullptr, *diagnose = nullptr;

  void AddLog(CLI::App* app);
  void AddBackfillAndCampaigns(CLI::App* app);
  void AddReconcileAndDiagnose(CLI::App* app);
  // -d, else the configuration's data directory.
  std::string DataDir() const;
};

void OperatorCommands::Impl::AddLog(CLI::App* app) {
  auto* log_cmd = app->add_subcommand(
      "log", "Verify or read the event log (safe while the service runs), or recover it");
  log_cmd->require_subcommand(1);
  verify = log_cmd->add_subcommand("verify", "Walk the hash chain; report the first break");
  verify->add_option("-d,--data-dir", data_dir, "data directory (default: from config)");
  verify->add_option("-c,--config", *config_path, "configuration file");
  verify->add_flag("--json", json, "print one JSON object");
  dump = log_cmd->add_subcommand("dump", "Print events as JSON lines");
  dump->add_option("-d,--data-dir", data_dir, "data directory (default: from config)");
  dump->add_option("-c,--config", *config_path, "configuration file");
  dump->add_option("--from", from, "first sequence number");
  dump->add_option("--limit", limit, "most events to print");
  dump->add_flag("--with-body", with_body,
                 "include webhook headers and bodies, and decision payloads (personal data)");
  recover = log_cmd->add_subcommand(
      "recover", "Open a log that lost acknowledged events, record the loss (service stopped)");
  recover->add_option("-d,--data-dir", data_dir, "data directory (default: from config)");
  recover->add_option("-c,--config", *config_path, "configuration file");
}

void OperatorCommands::Impl::AddBackfillAndCampaigns(CLI::App* app) {
  backfill = app->add_subcommand(
      "backfill",
      "Import the contacts a system already holds (through the running service, else here)");
  backfill->add_option("system", bf.system, BackfillSystems())->required();
  backfill->add_option("-c,--config", *config_path, "configuration file");
  backfill->add_option("--tenant", bf.tenant, "tenant whose connector settings are used")
      ->capture_default_str();
  backfill->add_option("--page-size", bf.page_size, "contacts per list request")
      ->check(CLI::Range(1, 500))
      ->capture_default_str();
  backfill->add_flag("--restart", bf.restart, "start over instead of continuing an unfinished run");

  campaigns = app->add_subcommand(
      "campaigns", "Campaigns through the running service: list, show ID, check ID, tasks ID");
  campaigns->add_option("action", camp.action, "list, show, check or tasks")
      ->required()
      ->check(CLI::IsMember({"list", "show", "check", "tasks"}));
  campaigns->add_option("id", camp.id, "the campaign (show, check, tasks)");
  campaigns->add_option("-c,--config", *config_path, "configuration file");
  campaigns->add_option("--tenant", camp.tenant, "the campaign's tenant")->capture_default_str();
  campaigns->add_flag("--stuck", camp.stuck,
                      "tasks: only those in progress whose lease ran out or claimed an hour ago");
  campaigns
      ->add_flag("--reset", camp.reset,
                 "tasks: give back those stuck now; the campaign's runner releases them")
      ->excludes("--stuck");
  campaigns->add_flag("--json", camp.json, "print the service's answer as it is");
}

void OperatorCommands::Impl::AddReconcileAndDiagnose(CLI::App* app) {
  reconcile = app->add_subcommand(
      "reconcile",
      "Compare the opt-out registry with what each system holds now; --execute sets "
      "the drift again (safe while the service runs)");
  reconcile->add_option("-c,--config", *config_path, "configuration file");
  reconcile->add_option("--tenant", rc.tenant, "tenant to reconcile")->capture_default_str();
  reconcile->add_option("--since", rc.since,
                        "only opt-outs made since (2026-11-20T15:04:05Z, 2026-11-20, -7d)");
  reconcile->add_flag("--execute", rc.execute, "hand the re-applications to the service");
  reconcile->add_flag("--json", rc.json, "one JSON object per line");
  reconcile
      ->add_option("--rate-share", rc.share,
                   "share of each system's rate limit to read at (default: "
                   "reconcile.rate_percent)")
      ->check(CLI::Range(0.01, 1.0));

  diagnose = app->add_subcommand(
      "diagnose", "Is everything set up and reachable? One line per check; exit 1 on any failure");
  diagnose->add_option("-c,--config", *config_path, "configuration file");
  diagnose->add_flag("--json", diagnose_json, "one JSON object");
}

std::string OperatorCommands::Impl::DataDir() const {
  if (!data_dir.empty()) return data_dir;
  std::vector<ConfigProblem> problems;
  return Config::Load(*config_path, Config::ProcessEnv(), &problems).data_dir();
}

OperatorCommands::OperatorCommands(CLI::App* app, std::string* config_path) : impl_(new Impl) {
  impl_->config_path = config_path;
  impl_->AddLog(app);
  impl_->AddBackfillAndCampaigns(app);
  impl_->AddReconcileAndDiagnose(app);
}

OperatorCommands::~OperatorCommands() = default;

int OperatorCommands::Run() {
  Impl& m = *impl_;
  if (m.verify->parsed()) return RunLogVerify(m.DataDir(), m.json, std::cout, std::cerr);
  if (m.recover->parsed()) return RunLogRecover(m.DataDir(), std::cout, std::cerr);
  if (m.dump->parsed())
    return RunLogDump(m.DataDir(), m.from, m.limit, m.with_body, std::cout, std::cerr);
  if (m.diagnose->parsed()) return RunDiagnose(*m.config_path, m.diagnose_json, std::cout);
  if (m.campaigns->parsed() && m.camp.action != "list" && m.camp.id.empty()) {
    std::cerr << "dfm campaigns " << m.camp.action << ": which campaign? (dfm campaigns list)\n";
    return 2;
  }
  if (!m.campaigns->parsed() && !m.backfill->parsed() && !m.reconcile->parsed()) return -1;
  std::optional<Config> loaded = LoadCommandConfig(*m.config_path);
  if (!loaded) return 2;
  if (m.campaigns->parsed()) return RunCampaignsCommand(*loaded, m.camp, std::cout, std::cerr);
  InitLogging(loaded->log_level());
  if (m.backfill->parsed()) return RunBackfillCommand(*loaded, m.bf, std::cout, std::cerr);
  if (loaded->cluster().enabled)
    m.rc.open_log = [&loaded, &m](std::unique_ptr<RocksDbEventLog>* log, std::string* where) {
      return OpenFoldedTenantCopy(*loaded, m.rc.tenant, where, log);
    };
  return RunReconcileCommand(*loaded, m.rc, std::cout, std::cerr);
}

}  // namespace dfm
