#include "app/backfill_command.h"

#include <unistd.h>

#include <chrono>
#include <ostream>
#include <thread>

#include "app/backfill.h"
#include "connectors/common/http_client.h"
#include "connectors/connector.h"
#include "projections/runner.h"
#include "projections/sync_projections.h"
#include "storage/rocksdb_event_log.h"
#include "util/clock.h"

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

int RunBackfillCommand(const Config& config, const BackfillCommandArgs& args, std::ostream& out,
                       std::ostream& err) {
  if (config.cluster().enabled) {
    // A node's data directory holds no log a partition reads: imports
    // written there would never be synced (docs/scale-out.md, "Limits").
    err << "dfm backfill: not in cluster mode: the imports would go to this machine's files, which no "
           "partition reads. Backfill on a single node before it joins the cluster, or let the "
           "systems' webhooks bring the contacts\n";
    return 2;
  }
  const std::string key_prefix =
      (args.tenant == "default" ? "" : "tenants." + args.tenant + ".") + args.system + ".";
  const Connector* factory = FindConnector(args.system);
  if (factory == nullptr || !factory->client || factory->backfill == Connector::Backfill::kNone) {
    err << "dfm backfill: no backfill for '" << args.system << "' (known: " << BackfillSystems()
        << ")\n";
    return 2;
  }
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
    err << "dfm backfill: cannot open " << config.data_dir() << ": " << s.ToString() << "\n";
    if (s.ToString().find("lock") != std::string::npos) {
      err << "  the service holds it: stop `dfm serve`, run the backfill, start the service "
             "again (it then syncs what was imported)\n";
    }
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
  out << args.system << ": " << st.seen << " contacts read, " << st.imported << " imported, "
      << st.unchanged << " unchanged";
  if (st.phones > 0 || st.pages == 0) {
    out << ", " << st.not_found << " of " << st.phones << " phones unknown";
    if (st.refused > 0) out << ", " << st.refused << " refused as invalid";
  }
  out << " (" << st.requests << " requests). Start `dfm serve` to sync them.\n";
  return 0;
}

}  // namespace dfm
