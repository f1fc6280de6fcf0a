#include "app/backfill_command.h"

#include <simdjson.h>
#include <unistd.h>

#include <chrono>
#include <ostream>
#include <thread>

#include "app/backfill.h"
#include "connectors/common/http_client.h"
#include "connectors/connector.h"
#include "projections/runner.h"
#include "projections/sync_projections.h"
#include "replay-tools/replay.h"
#include "storage/rocksdb_event_log.h"
#include "util/clock.h"
#include "util/json.h"

namespace dfm {

std::string BackfillSystems() {
  std::string out;
  for (const Connector* c : Connectors()) {
    if (!c->client || c->backfill == Connector::Backfill::kNone) continue;
    out += (out.empty() ? "" : ", ") + c->system +
           (c->backfill == Connector::Backfill::kList ? " (list API)" : " (looked up by known phones)");
  }
  return out;
}

namespace {

// "ghl: 6 contacts read, 6 imported, 0 unchanged (4 requests)."
void PrintSummary(const std::string& system, const BackfillStats& st, std::ostream& out) {
  out << system << ": " << st.seen << " contacts read, " << st.imported << " imported, " << st.unchanged
      << " unchanged";
  if (st.phones > 0 || st.pages == 0) {
    out << ", " << st.not_found << " of " << st.phones << " phones unknown";
    if (st.refused > 0) out << ", " << st.refused << " refused as invalid";
  }
  out << " (" << st.requests << " requests).";
}

// With the service stopped: on the data directory itself.
int BackfillHere(const Config& config, const BackfillCommandArgs& args, std::ostream& out, std::ostream& err) {
  const std::string key_prefix =
      (args.tenant == "default" ? "" : "tenants." + args.tenant + ".") + args.system + ".";
  const Connector* factory = FindConnector(args.system);
  const auto& systems = config.Systems(args.tenant);
  auto it = systems.find(args.system);
  if (it == systems.end() || !factory->outbound_enabled(it->second)) {
    err << "dfm backfill: " << key_prefix << "api_base_url is not set for tenant '" << args.tenant
        << "'; backfill reads the vendor's API with the connector's settings\n";
    return 2;
  }
  const SystemSettings& settings = it->second;

  std::unique_ptr<RocksDbEventLog> log;
  RocksDbLogOptions lo;
  lo.path = config.data_dir();
  Status s = OpenToolKeys(config.data_dir(), /*read_only=*/false, &lo.keys);
  if (s.ok()) s = RocksDbEventLog::Open(lo, &log);
  if (!s.ok()) {
    err << "dfm backfill: no service answers at " << AdminBaseUrl(config.server()) << " and "
        << config.data_dir() << " cannot be opened: " << s.ToString() << "\n";
    return 1;
  }
  MappingsProjection mappings;  // lookup mode reads the known phones from it
  s = ProjectionRunner(log.get(), &mappings).CatchUp();
  if (!s.ok()) {
    err << "dfm backfill: mappings projection: " << s.ToString() << "\n";
    return 1;
  }

  CurlHttpClient http(4);
  std::unique_ptr<VendorClient> client = factory->client(settings, &http);
  Normalizer normalizer(config.sync().default_region);
  BackfillDeps deps;
  deps.log = log.get();
  deps.client = client.get();
  deps.credentials = factory->credentials(settings);
  deps.normalizer = &normalizer;
  deps.now_us = [] { return SystemClock::Instance()->NowMicros(); };
  deps.sleep_us = [](int64_t us) { std::this_thread::sleep_for(std::chrono::microseconds(us)); };
  deps.warn = [&err](const std::string& w) { err << "\nwarning: " << w << "\n"; };

  BackfillOptions o;
  o.tenant = args.tenant;
  o.system = args.system;
  o.page_size = args.page_size;
  o.restart = args.restart;
  int64_t limit = std::max<int64_t>(1, std::stoll(settings.at("rate_limit")));
  o.min_interval_us = std::stoll(settings.at("rate_window_ms")) * 1000 / limit;
  o.retry_base_us = std::stoll(settings.at("retry_base_ms")) * 1000;
  o.retry_max_us = std::stoll(settings.at("retry_max_ms")) * 1000;
  o.max_attempts = static_cast<int>(std::max<int64_t>(1, std::stoll(settings.at("max_attempts"))));
  o.run_id = "backfill-" + std::to_string(deps.now_us() / 1000000) + "-" + std::to_string(getpid());

  const bool tty = isatty(STDERR_FILENO) != 0;
  const int64_t started = deps.now_us();
  int64_t last_print = 0;
  auto show = [&](const BackfillStats& st) {
    int64_t now = deps.now_us();
    if (!st.finished && now - last_print < 1000000) return;
    last_print = now;
    double secs = std::max(1e-3, static_cast<double>(now - started) / 1e6);
    err << (tty ? "\r\033[K" : "") << FormatBackfillProgress(args.system, st, st.seen / secs)
        << (tty ? "" : "\n") << std::flush;
  };
  if (!args.restart) {
    std::string pos;
    if (log->GetConsumerState(kBackfillConsumer, args.tenant + "/" + args.system, &pos).ok())
      err << "continuing the unfinished backfill of " << args.system
          << " (--restart starts over)\n";
  }
  BackfillStats st;
  s = RunBackfill(o, deps, show, &st);
  if (tty) err << "\n";
  client.reset();
  log->Close();  // every append was already durable when RunBackfill saw it
  if (!s.ok()) {
    err << "dfm backfill: " << s.ToString()
        << "\n  what was read is kept; run the same command again to continue\n";
    return 1;
  }
  PrintSummary(args.system, st, out);
  out << " Start `dfm serve` to sync them.\n";
  return 0;
}

// A run as the service shows it (app/backfill_jobs.h's BackfillJobJson).
struct ServiceRun {
  std::string run_id, state, error, progress;
  BackfillStats stats;
};

bool ParseRun(simdjson::dom::object o, ServiceRun* r) {
  std::string_view v;
  if (o["run_id"].get(v)) return false;
  r->run_id = std::string(v);
  if (o["state"].get(v)) return false;
  r->state = std::string(v);
  r->error = o["error"].get(v) ? "" : std::string(v);
  r->progress = o["progress"].get(v) ? "" : std::string(v);
  for (auto [name, field] : {std::pair{"requests", &BackfillStats::requests}, {"pages", &BackfillStats::pages},
                             {"phones", &BackfillStats::phones}, {"asked", &BackfillStats::asked},
                             {"not_found", &BackfillStats::not_found}, {"refused", &BackfillStats::refused},
                             {"seen", &BackfillStats::seen}, {"imported", &BackfillStats::imported},
                             {"unchanged", &BackfillStats::unchanged}, {"total", &BackfillStats::total}}) {
    int64_t n = 0;
    if (o[name].get(n)) return false;
    r->stats.*field = n;
  }
  return true;
}

// The tenant's run of `system` in a GET answer; false when there is none.
bool FindRun(const std::string& body, const std::string& system, ServiceRun* r) {
  simdjson::dom::parser parser;
  simdjson::dom::object doc;
  simdjson::dom::array runs;
  if (parser.parse(body.data(), body.size()).get(doc) || doc["backfills"].get(runs)) return false;
  for (simdjson::dom::element e : runs) {
    simdjson::dom::object o;
    std::string_view s;
    if (e.get(o) || o["system"].get(s) || s != system) continue;
    return ParseRun(o, r);
  }
  return false;
}

// Follows the tenant's run of `system` on the service until it ends:
// progress on `err` each second, the summary on `out`. A node that stops
// answering (its partition moving) is waited for up to a minute; a run
// the next node resumed is followed under its new id.
int Follow(const Config& config, const BackfillCommandArgs& args, std::ostream& out, std::ostream& err) {
  const std::string base_url = AdminBaseUrl(config.server());
  const std::string path = "/v1/admin/backfill?tenant=" + UrlEscape(args.tenant);
  const bool tty = isatty(STDERR_FILENO) != 0;
  std::string last_progress, run_id;
  auto silent_since = std::chrono::steady_clock::now();
  for (;;) {
    ServiceAnswer a = AskService(config.data_dir(), base_url, "GET", path, "", 15000);
    ServiceRun run;
    if (a.http.status != 200 || !FindRun(a.http.body, args.system, &run)) {
      if (std::chrono::steady_clock::now() - silent_since > std::chrono::seconds(60)) {
        err << (tty ? "\n" : "") << "dfm backfill: the service stopped answering about the run (HTTP "
            << a.http.status << "); it continues where the tenant runs: ask again with the same command\n";
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    silent_since = std::chrono::steady_clock::now();
    if (!run_id.empty() && run.run_id != run_id)
      err << (tty ? "\n" : "") << "continued as " << run.run_id << " (the tenant moved to another node)\n";
    run_id = run.run_id;
    const bool started = run.stats.requests > 0 || run.state != "running";
    if (started && (run.progress != last_progress || run.state != "running")) {
      err << (tty ? "\r\033[K" : "") << run.progress << (tty ? "" : "\n") << std::flush;
      last_progress = run.progress;
    }
    if (run.state == "running") {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    if (tty) err << "\n";
    if (run.state != "done") {
      err << "dfm backfill: " << run.state << ": " << run.error
          << "\n  what was read is kept; run the same command again to continue\n";
      return 1;
    }
    PrintSummary(args.system, run.stats, out);
    out << " The service syncs them now.\n";
    return 0;
  }
}

// Asks the running service to backfill, then follows the run. -1 when no
// service answers (the caller goes on without it).
int BackfillThroughService(const Config& config, const BackfillCommandArgs& args, std::ostream& out,
                           std::ostream& err) {
  const std::string base_url = AdminBaseUrl(config.server());
  const std::string body = JsonObject()
                               .Str("system", args.system)
                               .Int("page_size", args.page_size)
                               .Bool("restart", args.restart)
                               .Finish();
  ServiceAnswer a = AskService(config.data_dir(), base_url, "POST",
                               "/v1/admin/backfill?tenant=" + UrlEscape(args.tenant), body, 15000);
  if (a.http.status == 0) return -1;
  if (a.http.status == 409) {
    err << "a backfill of " << args.system << " already runs for tenant '" << args.tenant << "': following it\n";
  } else if (a.http.status != 200) {
    err << "dfm backfill: the service answered HTTP " << a.http.status << ": " << a.http.body << "\n";
    return a.http.status == 422 || a.http.status == 400 ? 2 : 1;
  } else {
    err << "backfill of " << args.system << " started by the service at " << base_url << "\n";
  }
  return Follow(config, args, out, err);
}

}  // namespace

int RunBackfillCommand(const Config& config, const BackfillCommandArgs& args, std::ostream& out,
                       std::ostream& err) {
  const Connector* factory = FindConnector(args.system);
  if (factory == nullptr || !factory->client || factory->backfill == Connector::Backfill::kNone) {
    err << "dfm backfill: no backfill for '" << args.system << "' (known: " << BackfillSystems() << ")\n";
    return 2;
  }
  int rc = BackfillThroughService(config, args, out, err);
  if (rc >= 0) return rc;
  if (config.cluster().enabled) {
    err << "dfm backfill: no node answers at " << AdminBaseUrl(config.server()) << "; in cluster mode the "
        << "backfill runs on the node of the tenant's partition: give the configuration of a running node (-c)\n";
    return 2;
  }
  return BackfillHere(config, args, out, err);
}

}  // namespace dfm
