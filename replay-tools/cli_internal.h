// ReplayTools' state (replay-tools/cli.h): the options the commands bind
// and the helpers they share. Shared by cli.cc (the options, Run) and
// cli_commands.cc (the commands that read the log); not for other users.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "replay-tools/cli.h"
#include "replay-tools/replay.h"
#include "replay-tools/trace.h"
#include "storage/rocksdb_event_log.h"

namespace dfm {

struct ReplayTools::Impl {
  std::string* config_path = nullptr;
  std::string data_dir, tenant;
  bool json = false, reveal = false;

  CLI::App *events = nullptr, *events_show = nullptr, *trace = nullptr, *replay = nullptr,
           *dead = nullptr, *proj_status = nullptr, *proj_rebuild = nullptr, *as_of = nullptr,
           *opt_outs = nullptr, *violations = nullptr, *verify = nullptr, *conflicts = nullptr,
           *settle = nullptr, *consent_conflicts = nullptr, *conversations = nullptr,
           *webhook_counts = nullptr, *access = nullptr;

  // events
  std::string from, to, system, type, stream, contact, event_id;
  uint64_t limit = UINT64_MAX;
  uint64_t after = 0;  // dfm events --after
  // trace / as-of
  std::string ref, since, until, at;
  bool no_scan = false;
  // replay
  bool execute = false;
  std::string push_id;
  // projections
  std::string projection;
  // audit
  std::string phone, email, format = "csv", now, against, access_key;
  int threshold_days = 10;
  // conflicts
  bool open_only = false, dismiss = false;
  uint64_t conflict_seq = 0;
  std::string settle_contact, settle_reason;

  Config config;
  std::unique_ptr<Normalizer> normalizer;
  MapperSource mapper;
  ReplayTools::ClusterLogs cluster_logs;
  bool data_dir_given = false;  // -d: read it, in cluster mode too

  // The log the commands read: the data directory, or in cluster mode
  // (no -d) a copy of the tenant's partition. False, said, when none.
  bool LogDir(std::string* dir);

  // The options every command takes.
  void Common(CLI::App* c);

  // `dfm conversations`: the conversations projection, one tenant or all.
  int ListConversations(const EventLog& log);

  void LoadConfig();

  std::vector<std::string> Tenants() const {
    if (!tenant.empty()) return {tenant};
    return config.tenants();
  }

  int64_t now_us = 0;  // one "now" for every time the command is given

  bool Time(const std::string& text, const char* what, int64_t* out);

  // 0 when resolved (some contacts), else the exit code.
  // `view`: the mappings, loaded, when the command needs them again.
  int Contacts(const EventLog& log, const std::string& text, std::vector<ContactMatch>* out,
               MappingsView* view = nullptr);

  std::string BaseUrl() const { return AdminBaseUrl(config.server()); }

  // The listings' guess at which re-driven texts the service will skip for
  // their age: by this command's configuration, now.
  TextAgeLimit AgeLimit() const { return {now_us, config.sync().redrive_max_text_age_us()}; }

  // Submits each tenant's re-drive to the running service (--execute);
  // the exit code.
  int Execute(const std::map<std::string, ReplayRequest>& requests);

  // The subcommands, each group's options bound to the fields above.
  void AddEvents(CLI::App* app);
  void AddTrace(CLI::App* app);
  void AddReplay(CLI::App* app);
  void AddProjections(CLI::App* app);
  void AddAsOf(CLI::App* app);
  void AddConversations(CLI::App* app);
  void AddAudit(CLI::App* app);
  void AddConflicts(CLI::App* app);
  int Run();
  // Run's commands that read the log (each: its exit code).
  int RunEvents(std::unique_ptr<RocksDbEventLog>& log);
  int RunTrace(std::unique_ptr<RocksDbEventLog>& log);
  int RunDeadLetters(std::unique_ptr<RocksDbEventLog>& log);
  int RunReplay(std::unique_ptr<RocksDbEventLog>& log);
  int RunSettle(std::unique_ptr<RocksDbEventLog>& log);
  int RunOptOutAudit(std::unique_ptr<RocksDbEventLog>& log);
  int RunViolations(std::unique_ptr<RocksDbEventLog>& log);
  int RunVerify(std::unique_ptr<RocksDbEventLog>& log);
};

}  // namespace dfm
