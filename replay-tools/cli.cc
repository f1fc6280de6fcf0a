#include "replay-tools/cli.h"

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "config/config.h"
#include "connectors/connector.h"
#include "projections/sync_projections.h"
#include "replay-tools/access_audit.h"
#include "replay-tools/audit.h"
#include "replay-tools/campaign_audit.h"
#include "replay-tools/cli_internal.h"
#include "replay-tools/conflicts.h"
#include "replay-tools/consent_audit.h"
#include "replay-tools/events_command.h"
#include "replay-tools/projection_commands.h"
#include "replay-tools/replay.h"
#include "replay-tools/trace.h"
#include "replay-tools/webhook_audit.h"
#include "storage/rocksdb_event_log.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/logging.h"

namespace dfm {

// The log the commands read: the data directory, or in cluster mode
// (no -d) a copy of the tenant's partition. False, said, when none.
bool ReplayTools::Impl::LogDir(std::string* dir) {
  *dir = data_dir;
  if (!config.cluster().enabled || data_dir_given || !cluster_logs) return true;
  // The copy holds every tenant its partition holds: the commands read
  // the one asked for (default when none), not the others sharing it.
  if (tenant.empty()) {
    tenant = "default";
    std::cerr << "dfm: cluster mode: reading tenant default (--tenant for another)\n";
  }
  const std::string t = tenant;
  Status s = cluster_logs(config, t, dir);
  if (!s.ok())
    std::cerr << "dfm: cluster mode: cannot copy tenant " << t << "'s log: " << s.ToString()
              << "\n";
  return s.ok();
}

void ReplayTools::Impl::Common(CLI::App* c) {
  c->add_option("-c,--config", *config_path, "configuration file (tenants, rules, data directory)");
  c->add_option("-d,--data-dir", data_dir, "data directory (default: from the configuration)");
  c->add_flag("--json", json, "JSON lines instead of a table");
}

void ReplayTools::Impl::LoadConfig() {
  std::vector<ConfigProblem> problems;  // read-only tools work with an incomplete config too
  config = Config::Load(*config_path, Config::ProcessEnv(), &problems);
  data_dir_given = !data_dir.empty();
  if (data_dir.empty()) data_dir = config.data_dir();
  normalizer = std::make_unique<Normalizer>(config.sync().default_region);
  mapper = MapperSource([this](const std::string& t, const std::string& s) {
    return MapperSettingsFor(config, normalizer.get(), t, s);
  });
}

bool ReplayTools::Impl::Time(const std::string& text, const char* what, int64_t* out) {
  if (text.empty()) return true;
  auto t = ParseToolTime(text, now_us);
  if (!t) {
    std::cerr << "dfm: " << what << " '" << text
              << "' is not a time (2026-11-20T15:04:05Z, 2026-11-20, now, -2h, -7d)\n";
    return false;
  }
  *out = *t;
  return true;
}

// 0 when resolved (some contacts), else the exit code.
// `view`: the mappings, loaded, when the command needs them again.
int ReplayTools::Impl::Contacts(const EventLog& log, const std::string& text,
                                std::vector<ContactMatch>* out, MappingsView* view) {
  ContactRef r;
  Status s = ParseContactRef(text, *normalizer, &r);
  if (s.ok()) {
    s = view ? ResolveContacts(*view, log, r, Tenants(), out)
             : ResolveContacts(log, r, Tenants(), out);
  }
  if (!s.ok()) {
    std::cerr << "dfm: " << s.ToString() << "\n";
    return 2;
  }
  if (out->empty()) {
    std::cerr << "dfm: no contact is known by " << text << "\n";
    return 1;
  }
  return 0;
}

// `dfm events` and `dfm events show`.
void ReplayTools::Impl::AddEvents(CLI::App* app) {
  events = app->add_subcommand("events", "List and filter the event log (read-only)");
  Common(events);
  events->add_option("--from", from,
                     "recorded at or after (2026-11-20T15:04:05Z, 2026-11-20, -2h)");
  events->add_option("--to", to, "recorded before");
  events->add_option("--tenant", tenant, "one tenant");
  events->add_option("--system", system, "about one system: " + ConnectorSystems());
  events->add_option("--type", type, "one type, or a prefix ending in * (push.*)");
  events->add_option("--stream", stream, "one stream (contact:<id>, source:<system>, replay)");
  events->add_option("--contact", contact, "a phone, an email, <system>:<id> or contact:<id>");
  events->add_option("--limit", limit,
                     "most events to print (with --contact, one more: an event with its cause)");
  events->add_option("--after", after, "only events after this sequence number")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 62));
  events->add_flag("--reveal", reveal, "show personal data (phones, emails, values, bodies)");
  events->require_subcommand(0, 1);
  events_show = events->add_subcommand("show", "One event with its causes and consequences");
  events_show->add_option("id", event_id, "event id or sequence number")->required();
  events_show->add_flag("--reveal", reveal, "show personal data");
  Common(events_show);
}

// `dfm trace`.
void ReplayTools::Impl::AddTrace(CLI::App* app) {
  trace = app->add_subcommand("trace", "The story of one contact across every system (read-only)");
  Common(trace);
  trace->add_option("contact", ref, "a phone, an email, <system>:<id> or contact:<id>")->required();
  trace->add_option("--tenant", tenant, "one tenant");
  trace->add_option("--since", since, "from this time (default: the contact's first webhook)");
  trace->add_option("--until", until, "up to this time");
  trace->add_flag("--no-scan", no_scan, "skip webhooks that changed nothing (faster on big logs)");
  trace->add_flag("--reveal", reveal, "show personal data");
}

// `dfm replay` and `dfm replay dead-letters`.
void ReplayTools::Impl::AddReplay(CLI::App* app) {
  replay = app->add_subcommand("replay", "Re-run sync decisions over a window; diff; re-drive");
  Common(replay);
  replay->add_option("--from", from, "webhooks recorded at or after this time");
  replay->add_option("--to", to, "and before this time (default: now)");
  replay->add_option("--contact", contact,
                     "one contact (phone, email, <system>:<id>, contact:<id>)");
  replay->add_option("--system", system, "only pushes to this system");
  replay->add_option("--tenant", tenant, "one tenant");
  replay->add_flag("--execute", execute, "re-drive what is missing through the running service");
  replay->add_flag("--reveal", reveal, "show personal data");
  replay->require_subcommand(0, 1);
  dead =
      replay->add_subcommand("dead-letters", "List dead-lettered pushes; re-drive with --execute");
  Common(dead);
  dead->add_option("--push", push_id, "one push id");
  dead->add_option("--system", system, "pushes to this system");
  dead->add_option("--contact", contact, "one contact");
  dead->add_option("--from", from, "dead-lettered at or after");
  dead->add_option("--to", to, "dead-lettered before");
  dead->add_option("--tenant", tenant, "one tenant");
  dead->add_flag("--execute", execute, "re-drive them through the running service");
}

// `dfm projections status|rebuild`.
void ReplayTools::Impl::AddProjections(CLI::App* app) {
  auto* proj = app->add_subcommand("projections", "Projection checkpoints; rebuild from the log");
  proj->require_subcommand(1);
  proj_status =
      proj->add_subcommand("status", "Checkpoint and lag of every projection (read-only)");
  Common(proj_status);
  proj_rebuild = proj->add_subcommand("rebuild", "Drop and rebuild projections (service stopped)");
  Common(proj_rebuild);
  proj_rebuild->add_option("name", projection,
                           "mappings, contacts, sync_status or opt_outs (default: all)");
}

// `dfm as-of`.
void ReplayTools::Impl::AddAsOf(CLI::App* app) {
  as_of = app->add_subcommand("as-of",
                              "A contact's state, ids and opt-outs at a past time (read-only)");
  Common(as_of);
  as_of->add_option("time", at, "2026-11-20T15:04:05Z, 2026-11-20, -2h")->required();
  as_of->add_option("contact", ref, "a phone, an email, <system>:<id> or contact:<id>")->required();
  as_of->add_option("--tenant", tenant, "one tenant");
  as_of->add_flag("--reveal", reveal, "show personal data");
}

// `dfm conversations`.
void ReplayTools::Impl::AddConversations(CLI::App* app) {
  conversations = app->add_subcommand(
      "conversations", "Which conversation each person is in, per system (read-only)");
  Common(conversations);
  conversations->add_option("--tenant", tenant, "one tenant");
  conversations->add_flag("--reveal", reveal, "show the people's numbers");
}

// `dfm audit opt-outs|violations|consent-conflicts|webhooks|access|verify`.
void ReplayTools::Impl::AddAudit(CLI::App* app) {
  auto* audit = app->add_subcommand("audit", "Opt-out history, violations, access, hash chain (read-only)");
  audit->require_subcommand(1);
  opt_outs = audit->add_subcommand("opt-outs", "Every opt-out and opt-in, who was told and when");
  opt_outs->add_option("-c,--config", *config_path, "configuration file");
  opt_outs->add_option("-d,--data-dir", data_dir, "data directory");
  opt_outs->add_option("--phone", phone, "one phone number");
  opt_outs->add_option("--email", email, "one email address");
  opt_outs->add_option("--since", since, "happened at or after");
  opt_outs->add_option("--until", until, "happened before");
  opt_outs->add_option("--tenant", tenant, "one tenant");
  opt_outs->add_option("--format", format, "csv or json")->check(CLI::IsMember({"csv", "json"}));
  violations = audit->add_subcommand(
      "violations",
      "Outbound to opted-out numbers; opt-outs slower than the threshold (exit 1 if any)");
  Common(violations);
  violations->add_option("--threshold-days", threshold_days, "business days an opt-out may take")
      ->capture_default_str();
  violations->add_option("--now", now, "measure opt-outs not yet everywhere up to this time");
  violations->add_option("--tenant", tenant, "one tenant");
  consent_conflicts = audit->add_subcommand("consent-conflicts",
                                            "Staff opt-ins refused over a person's opt-out, and "
                                            "whether it was set again (exit 1 if any)");
  Common(consent_conflicts);
  consent_conflicts->add_option("--tenant", tenant, "one tenant");
  webhook_counts = audit->add_subcommand(
      "webhooks", "Per tenant and system: webhooks, batches among them, the facts they carried");
  Common(webhook_counts);
  webhook_counts->add_option("--tenant", tenant, "one tenant");
  webhook_counts->add_option("--since", since, "recorded at or after");
  webhook_counts->add_option("--until", until, "recorded before");
  access = audit->add_subcommand(
      "access", "Every call of the keyed and admin API: who, from where, what answer");
  Common(access);
  access->add_option("--since", since, "at or after (2026-11-20T15:04:05Z, 2026-11-20, -2h)");
  access->add_option("--key", access_key, "one key id (none: calls without a valid credential)");
  verify = audit->add_subcommand("verify", "Check the hash chain; print a summary to keep");
  Common(verify);
  verify->add_option("--against", against,
                     "a summary kept from an earlier run: check the log still holds it");
}

// `dfm conflicts` and `dfm conflicts settle`.
void ReplayTools::Impl::AddConflicts(CLI::App* app) {
  conflicts = app->add_subcommand(
      "conflicts",
      "Identity conflicts (a phone naming one contact, an email another); settle them");
  Common(conflicts);
  conflicts->add_option("--tenant", tenant, "one tenant");
  conflicts->add_flag("--open", open_only, "only those not settled yet");
  conflicts->add_flag("--reveal", reveal, "show personal data (phones, emails, values)");
  settle = conflicts->add_subcommand(
      "settle",
      "Say which candidate a conflict's fact concerns (or dismiss it); the service applies it");
  Common(settle);
  settle->add_option("conflict", conflict_seq, "the identity.conflict's sequence number")
      ->required();
  // Exactly one: the parser refuses none or both (exit above 100).
  auto* choice = settle->add_option_group("choice", "what the conflict's fact concerns");
  choice->add_option("--contact", settle_contact,
                     "the candidate contact (its engine id) the fact concerns");
  choice->add_flag("--dismiss", dismiss,
                   "the fact concerns neither: leave it unapplied (its opt-outs stand)");
  choice->require_option(1);
  settle->add_option("--reason", settle_reason, "a note kept with the settlement");
}

ReplayTools::ReplayTools(CLI::App* app, std::string* config_path)
    : impl_(std::make_unique<Impl>()) {
  impl_->config_path = config_path;
  impl_->AddEvents(app);
  impl_->AddTrace(app);
  impl_->AddReplay(app);
  impl_->AddProjections(app);
  impl_->AddAsOf(app);
  impl_->AddConversations(app);
  impl_->AddAudit(app);
  impl_->AddConflicts(app);
}

ReplayTools::~ReplayTools() = default;

int ReplayTools::Run() { return impl_->Run(); }
void ReplayTools::SetClusterLogs(ClusterLogs pull) { impl_->cluster_logs = std::move(pull); }

int ReplayTools::Impl::Run() {
  bool any = events->parsed() || trace->parsed() || replay->parsed() || proj_status->parsed() ||
             proj_rebuild->parsed() || as_of->parsed() || opt_outs->parsed() ||
             violations->parsed() || verify->parsed() || conflicts->parsed() ||
             consent_conflicts->parsed() || conversations->parsed() || webhook_counts->parsed() ||
             access->parsed();
  if (!any) return -1;
  LoadConfig();
  now_us = SystemClock::Instance()->NowMicros();
  if (access->parsed()) {
    int64_t since_us = 0;
    if (!Time(since, "--since", &since_us)) return 2;
    return RunAccessAudit(data_dir, since_us, access_key, json, std::cout, std::cerr);
  }
  if (proj_rebuild->parsed())
    return RunProjectionsRebuild(data_dir, projection, json, std::cout, std::cerr, std::cerr);

  std::string log_dir;
  if (!LogDir(&log_dir)) return 2;
  std::unique_ptr<RocksDbEventLog> log;
  Status s = OpenToolLog(log_dir, &log);
  if (!s.ok()) {
    std::cerr << "dfm: cannot read " << log_dir << ": " << s.ToString() << "\n";
    return 2;
  }
  if (events_show->parsed()) return ShowEvent(*log, event_id, json, reveal, std::cout, std::cerr);
  if (conversations->parsed()) return ListConversations(*log);
  if (events->parsed()) return RunEvents(log);
  if (trace->parsed()) return RunTrace(log);
  if (dead->parsed()) return RunDeadLetters(log);
  if (replay->parsed()) return RunReplay(log);
  if (settle->parsed()) return RunSettle(log);
  if (conflicts->parsed()) {
    std::vector<ConflictRow> rows;
    s = FindConflicts(*log, tenant, open_only, &rows);
    if (!s.ok()) {
      std::cerr << "dfm conflicts: " << s.ToString() << "\n";
      return 2;
    }
    return PrintConflicts(rows, json, reveal, std::cout);
  }
  if (proj_status->parsed()) return RunProjectionsStatus(*log, json, std::cout, std::cerr);
  if (as_of->parsed()) {
    int64_t t = 0;
    if (!Time(at, "time", &t)) return 2;
    std::vector<ContactMatch> contacts;
    if (int rc = Contacts(*log, ref, &contacts)) return rc;
    return RunAsOf(*log, t, contacts, json, reveal, std::cout, std::cerr);
  }
  if (opt_outs->parsed()) return RunOptOutAudit(log);
  if (webhook_counts->parsed()) {
    WebhookAuditOptions o;
    o.tenant = tenant;
    if (!Time(since, "--since", &o.since_us) || !Time(until, "--until", &o.until_us)) return 2;
    std::vector<WebhookCount> counts;
    s = CountWebhooks(*log, mapper, o, &counts);
    if (!s.ok()) {
      std::cerr << "dfm audit webhooks: " << s.ToString() << "\n";
      return 2;
    }
    return PrintWebhookCounts(counts, json, std::cout);
  }
  if (consent_conflicts->parsed()) {
    std::vector<ConsentConflictRecord> found;
    s = CollectConsentConflicts(*log, tenant, &found);
    if (!s.ok()) {
      std::cerr << "dfm audit consent-conflicts: " << s.ToString() << "\n";
      return 2;
    }
    return PrintConsentConflicts(found, json, std::cout);
  }
  if (violations->parsed()) return RunViolations(log);
  if (verify->parsed()) return RunVerify(log);
  return -1;
}

}  // namespace dfm
