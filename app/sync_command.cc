#include "app/sync_command.h"

#include <CLI/CLI.hpp>
#include <simdjson.h>

#include <iostream>
#include <optional>
#include <vector>

#include "config/config.h"
#include "replay-tools/replay.h"
#include "storage/rocksdb_event_log.h"
#include "sync/sync_control.h"
#include "util/clock.h"
#include "util/json.h"

namespace dfm {
namespace {

std::optional<Config> Load(const std::string& path) {
  std::vector<ConfigProblem> problems;
  Config c = Config::Load(path, Config::ProcessEnv(), &problems);
  bool failed = false;
  for (const ConfigProblem& p : problems) {
    if (!p.error) continue;
    std::cerr << "error: " << p.key << ": " << p.message << "\n";
    failed = true;
  }
  if (failed) return std::nullopt;
  return c;
}

std::string ScopeText(const std::string& tenant, const std::string& system) {
  return (tenant == kEverything ? std::string("every tenant") : "tenant " + tenant) + ", " +
         (system == kEverything ? std::string("every system") : "system " + system);
}

std::string Field(simdjson::dom::element e, const char* key) {
  std::string_view v;
  return e[key].get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
}

// The state the service answered, in words (the JSON with --json).
void PrintState(const std::string& body, bool json) {
  if (json) {
    std::cout << body << "\n";
    return;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS) {
    std::cout << body << "\n";
    return;
  }
  simdjson::dom::array pauses, limits;
  size_t n = 0;
  if (doc["pauses"].get(pauses) == simdjson::SUCCESS) {
    for (auto p : pauses) {
      const std::string reason = Field(p, "reason");
      std::cout << "paused: " << ScopeText(Field(p, "tenant"), Field(p, "system")) << " since "
                << Field(p, "since") << " by " << Field(p, "by") << (reason.empty() ? "" : " (" + reason + ")")
                << "\n";
      ++n;
    }
  }
  if (doc["limits"].get(limits) == simdjson::SUCCESS) {
    for (auto l : limits) {
      int64_t c = 0;
      if (l["concurrency"].get(c) != simdjson::SUCCESS) c = 0;
      std::cout << "limited: " << ScopeText(Field(l, "tenant"), Field(l, "system")) << " to at most " << c
                << " at once since " << Field(l, "since") << "\n";
      ++n;
    }
  }
  if (n == 0) std::cout << "syncing: nothing paused or limited\n";
  // Cluster mode: which nodes hold the change now.
  simdjson::dom::object nodes;
  if (doc["nodes"].get(nodes) != simdjson::SUCCESS) return;
  auto names = [&nodes](const char* key) {
    std::string out;
    simdjson::dom::array a;
    if (nodes[key].get(a) == simdjson::SUCCESS)
      for (auto v : a) {
        std::string_view name;
        if (v.get(name) == simdjson::SUCCESS) out += (out.empty() ? "" : ", ") + std::string(name);
      }
    return out;
  };
  const std::string held = names("held"), waiting = names("waiting");
  if (!held.empty()) std::cout << "held by: " << held << "\n";
  if (!waiting.empty())
    std::cout << "not yet held by: " << waiting << " (each holds it at its next read of the "
              << "shared pauses, within seconds, unless it is of a build before the answer "
              << "named them; `dfm sync status` on it tells)\n";
  std::string_view unknown;
  if (nodes["unknown"].get(unknown) == simdjson::SUCCESS)
    std::cout << "which nodes hold it is not known: " << unknown << "\n";
}

// The event appended by this tool, for a log no service holds.
int AppendOffline(const Config& c, const EventDraft& d, const std::string& base) {
  std::unique_ptr<RocksDbEventLog> log;
  Status s = OpenLogWithoutService(c.data_dir(), base, &log);
  std::vector<AppendOutcome> out;
  if (s.ok()) {
    s = log->Append({d}, &out);
    log->Close();
  }
  if (!s.ok()) {
    std::cerr << "dfm sync: " << s.ToString() << "\n";
    return 2;
  }
  std::cout << "recorded as event " << out[0].seq
            << " (no service runs: it takes effect when the service starts)\n";
  return 0;
}

}  // namespace

struct SyncCommands::Impl {
  std::string* config_path = nullptr;
  CLI::App *sync = nullptr, *pause = nullptr, *resume = nullptr, *status = nullptr;
  std::string tenant, system, reason;
  int concurrency = 0;
  bool json = false;

  int Change(bool resuming);
};

SyncCommands::SyncCommands(CLI::App* app, std::string* config_path) : impl_(new Impl) {
  Impl& m = *impl_;
  m.config_path = config_path;
  m.sync = app->add_subcommand("sync", "Pause or resume the pushes to vendors (docs/operations.md)");
  m.sync->add_option("-c,--config", *config_path, "configuration file");
  m.pause = m.sync->add_subcommand("pause", "Stop pushing to vendors; webhooks are still recorded");
  m.resume = m.sync->add_subcommand("resume", "Push again, optionally at most N requests at once");
  for (CLI::App* sub : {m.pause, m.resume}) {
    sub->add_option("--tenant", m.tenant, "one tenant (default: every one)");
    sub->add_option("--system", m.system, "one system, e.g. ghl (default: every one)");
    sub->add_flag("--json", m.json, "the state after, as JSON");
  }
  m.pause->add_option("--reason", m.reason, "why, in a few words (recorded; no personal data)");
  m.resume->add_option("--concurrency", m.concurrency, "at most N requests at once per system (1-1000)")
      ->check(CLI::Range(1, 1000));
  m.status = m.sync->add_subcommand("status", "What is paused or limited now");
  m.status->add_flag("--json", m.json, "as JSON");
  for (CLI::App* sub : {m.pause, m.resume, m.status}) sub->add_option("-c,--config", *config_path, "configuration file");
  m.sync->require_subcommand(1);
}

SyncCommands::~SyncCommands() = default;

int SyncCommands::Impl::Change(bool resuming) {
  std::optional<Config> c = Load(*config_path);
  if (!c) return 2;
  const std::string base = AdminBaseUrl(c->server());
  JsonObject body;
  if (!tenant.empty()) body.Str("tenant", tenant);
  if (!system.empty()) body.Str("system", system);
  if (!resuming && !reason.empty()) body.Str("reason", reason);
  if (resuming && concurrency > 0) body.Int("concurrency", concurrency);
  const std::string text = body.Finish();
  ServiceAnswer a = AskService(c->data_dir(), base, "POST",
                               resuming ? "/v1/admin/sync/resume" : "/v1/admin/sync/pause", text);
  if (a.http.status == 200) {
    PrintState(a.http.body, json);
    return 0;
  }
  if (a.http.status != 0) {
    std::cerr << "dfm sync: the service answered HTTP " << a.http.status << ": " << a.http.body << "\n";
    return 2;
  }
  SyncControlRequest req;
  Status s = DecodeSyncControlRequest(text, resuming, &req);
  if (!s.ok()) {
    std::cerr << "dfm sync: " << s.ToString() << "\n";
    return 2;
  }
  const int64_t now = SystemClock::Instance()->NowMicros();
  const std::string run = "cli-" + std::to_string(now);
  return AppendOffline(*c, resuming ? SyncResumedDraft(req, "cli", run, now) : SyncPausedDraft(req, "cli", run, now),
                       base);
}

int SyncCommands::Run() {
  Impl& m = *impl_;
  if (m.pause->parsed()) return m.Change(false);
  if (m.resume->parsed()) return m.Change(true);
  if (!m.status->parsed()) return -1;
  std::optional<Config> c = Load(*m.config_path);
  if (!c) return 2;
  ServiceAnswer a = AskService(c->data_dir(), AdminBaseUrl(c->server()), "GET", "/v1/admin/sync", "");
  if (a.http.status != 200) {
    std::cerr << "dfm sync status: "
              << (a.http.status == 0 ? std::string("no service answers (it holds the state; start it)")
                                     : "the service answered HTTP " + std::to_string(a.http.status) + ": " +
                                           a.http.body)
              << "\n";
    return 2;
  }
  PrintState(a.http.body, m.json);
  return 0;
}

}  // namespace dfm
