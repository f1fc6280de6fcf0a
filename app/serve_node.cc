#include "app/serve_node.h"

#include <functional>
#include <memory>

#include "app/backup_command.h"
#include "app/erase.h"
#include "app/reconcile_schedule.h"
#include "app/serve_common.h"
#include "app/backfill_jobs.h"
#include "app/sync_runtime.h"
#include "http/server.h"
#include "storage/backup.h"
#include "storage/erasure_ledger.h"
#include "storage/erasure_scrubber.h"
#include "storage/rocksdb_event_log.h"
#include "util/admin_token.h"
#include "util/clock.h"
#include "util/logging.h"

namespace dfm {

namespace {

// The data directory's log and the key store that seals its personal data
// (docs/privacy.md), with what the log says was erased destroyed again (a
// key store restored from an older copy). False, logged, when it cannot.
bool OpenServiceLog(const Config& config, std::unique_ptr<RocksDbEventLog>* log,
                    std::shared_ptr<KeyStore>* keys, RocksDbKeyStore** rocks_keys) {
  auto logger = Logger("main");
  std::unique_ptr<RocksDbKeyStore> ks;
  Status s = RocksDbKeyStore::Open(KeyStorePath(config.data_dir()), false, &ks);
  if (!s.ok()) {
    logger->critical("event=key_store_open_failed error=\"{}\"", s.ToString());
    return false;
  }
  *rocks_keys = ks.get();
  *keys = std::move(ks);
  RocksDbLogOptions opts;
  opts.path = config.data_dir();
  opts.min_free_bytes = config.min_free_bytes();
  opts.keys = *keys;
  s = RocksDbEventLog::Open(opts, log);
  if (!s.ok()) {
    logger->critical("event=open_failed data_dir={} error=\"{}\"", config.data_dir(), s.ToString());
    return false;
  }
  logger->info("event=log_open data_dir={} last_seq={}", config.data_dir(), (*log)->LastSequence());
  uint64_t reapplied = 0;
  s = ApplyErasures(log->get(), keys->get(), &reapplied, ErasureLedgerPath(config.data_dir()));
  if (!s.ok()) {
    logger->critical("event=erasures_not_applied error=\"{}\"", s.ToString());
    (*log)->Close();
    return false;
  }
  if (reapplied > 0) {
    logger->warn("event=erasures_applied_again count={}", reapplied);
    // The snapshots it deleted (erasures since the last start: a crash,
    // a restored key store) out of the files too.
    if (Status c = (*log)->CompactDerived(); !c.ok())
      logger->error("event=erasure_compaction_failed error=\"{}\"", c.ToString());
  }
  return true;
}

// POST /v1/admin/erase and /v1/admin/backup over the node's log and keys;
// an erasure's compaction is `scrubber`'s. An erasure reads the person's
// webhooks with the configuration a reload put in place (`live`): the
// mappers read what the router read.
void SetAdminHandlers(const std::atomic<const Config*>& live, RocksDbEventLog* log,
                      std::shared_ptr<KeyStore> keys, RocksDbKeyStore* rocks_keys,
                      ErasureScrubber* scrubber, const SyncRuntime* sync, HttpFront* front) {
  const Config& config = *live.load();  // data_dir: a restart's
  front->SetEraseHandler(
      [log, keys, scrubber, sync, &live](const std::string& tenant, const std::string& contact,
                                         const std::string& reason, const std::string& by,
                                         bool force, EraseAnswer* answer) {
        const Config& now = *live.load();
        Status s = EraseForApi(now, log, keys.get(), ErasureLedgerPath(now.data_dir()), tenant,
                               contact, reason, by, force, answer, sync->DecidedSource());
        if (s.ok() && !answer->already) scrubber->ScrubAfter(answer->seq);
        return s;
      });
  front->SetBackupHandler([log, rocks_keys, &config](const std::string& into, int keep, std::string* manifest) {
    BackupManifest m;
    Status bs = CreateBackup(log, rocks_keys, config.data_dir(), into, SystemClock::Instance()->NowMicros(),
                             VersionString(), keep, &m);
    if (bs.ok()) *manifest = EncodeBackupManifest(m);
    return bs;
  });
}

}  // namespace

int ServeNode(const Config& config, const std::string& config_path) {
  auto logger = Logger("main");
  std::unique_ptr<RocksDbEventLog> log;
  std::shared_ptr<KeyStore> keys;
  RocksDbKeyStore* rocks_keys = nullptr;  // the same store, for backups
  if (!OpenServiceLog(config, &log, &keys, &rocks_keys)) {
    spdlog::shutdown();
    return 1;
  }
  std::unique_ptr<SyncRuntime> sync;
  Status s = SyncRuntime::Start(config, log.get(), &sync, nullptr, keys->HashKey());
  if (!s.ok()) {
    logger->critical("event=sync_start_failed error=\"{}\"", s.ToString());
    log->Close();
    spdlog::shutdown();
    return 1;
  }
  int rc = 0;
  {
    // An erasure's compaction, after its answer; stopped before the log closes.
    ErasureScrubber scrubber(log.get(), [](uint64_t seq, const Status& st) {
      Logger("main")->warn("event=erasure_not_compacted seq={} error=\"{}\"", seq, st.ToString());
    });
    HttpFront front(config, log.get());
    front.SetHealthParts([&sync](uint64_t last_seq, JsonObject* parts) { sync->AddHealthParts(last_seq, parts); });
    front.SetHealthServices([&sync](JsonObject* services) { sync->AddServices(services); });
    front.SetStatusSource([&sync, &log](const std::string&,
                                        std::vector<ConnectorSnapshot>* connectors,
                                        EngineSnapshot* engine) {
      sync->StatusSnapshot(log->LastSequence(), connectors, engine);
    });
    std::unique_ptr<Alerter> alerter;  // [alerts]: mails what the alerting rules say
    front.SetMetricsParts([&sync, &log, &alerter](uint64_t last_seq, MetricsText* out) {
      log->WriteMetrics(out);
      sync->WriteMetrics(last_seq, out);
      WriteAlerterMetrics(alerter.get(), out);
    });
    alerter = StartAlerter(config, [&front] { return front.ScrapeMetrics(); });
    if (alerter) alerter->Start();
    // [reconcile] daily_at: always watching, so a reload turns it on or off.
    auto reconcile = std::make_unique<ReconcileSchedule>(config, log.get(),
                                                         [] { return SystemClock::Instance()->NowMicros(); });
    reconcile->Start();
    if (!config.reconcile().daily_at.empty())
      logger->info("event=reconcile_daily at_utc={} execute={}", config.reconcile().daily_at,
                   config.reconcile().execute);
    std::atomic<const Config*> live{&config};  // what a reload put in place
    Reloader reloader(config_path, &config, [&](const Config& next) {
      live.store(&next);
      sync->Reload(next);
      front.Reload(next);
      reconcile->Reload(next);
    });
    front.SetReloadHandler(std::ref(reloader));
    SetAdminHandlers(live, log.get(), keys, rocks_keys, &scrubber, sync.get(), &front);
    SyncControlHooks hooks;
    hooks.control = sync->control();
    hooks.wake = [&sync] { sync->WakeConnectors(); };
    front.SetSyncControl(std::move(hooks));
    front.SetBackfillHandler([&sync, &live](const std::string& tenant, const BackfillAsk& ask, std::string* json) {
      return AnswerBackfill(sync->backfills(), *live.load(), tenant, ask, json);
    });
    std::string token;
    s = WriteAdminToken(config.data_dir(), &token);
    if (s.ok()) {
      front.SetAdminToken(token);
    } else {
      logger->warn("event=admin_token_unwritten error=\"{}\" effect=\"admin endpoints off\"", s.ToString());
    }
    // systemd (Type=notify): ready once the listeners are bound; the
    // watchdog is fed while the log can write.
    rc = RunFront(&front, [&front, &log] { return front.listening() && !log->Health().IsUnavailable(); },
                  "serving webhooks; event log open");
    if (alerter) alerter->Stop();
    reconcile->Stop();
    sync->Stop();  // no new decisions; unsettled pushes are re-driven at the next start
    log->Close();  // every queued append is durable and answered
  }
  logger->info("event=exit code={}", rc);
  spdlog::shutdown();
  return rc;
}

}  // namespace dfm
