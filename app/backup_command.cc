#include "app/backup_command.h"

#include <simdjson.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <optional>

#include "app/backup.h"
#include "config/config.h"
#include "events/codec.h"
#include "events/webhook_received.h"
#include "replay-tools/replay.h"
#include "storage/backup.h"
#include "storage/data_dir.h"
#include "storage/key_store.h"
#include "storage/rocksdb_event_log.h"
#include "storage/shared_key_store.h"
#include "sync/contact_snapshot.h"
#include "util/clock.h"
#include "util/json.h"

#ifndef DFM_VERSION_STRING
#define DFM_VERSION_STRING "unknown"
#endif

namespace dfm {
namespace {

constexpr int kBackupTimeoutMs = 3600 * 1000;  // a big log through the service

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

void PrintManifest(const BackupManifest& m, bool json, std::ostream& out) {
  if (json) {
    out << EncodeBackupManifest(m);
    return;
  }
  out << "backup " << m.id << ": events 1.." << m.last_seq << ", head " << m.head_hash.substr(0, 16)
      << "…, log " << Mib(m.log_bytes) << ", keys " << Mib(m.keys_bytes) << ", added "
      << Mib(m.added_bytes) << "\n";
}

std::optional<Config> Load(const std::string& path) {
  std::vector<ConfigProblem> problems;
  Config c = Config::Load(path, Config::ProcessEnv(), &problems);
  int errors = 0;
  for (const ConfigProblem& p : problems) {
    if (!p.error) continue;
    std::cerr << "error: " << p.key << ": " << p.message << "\n";
    ++errors;
  }
  if (errors > 0) return std::nullopt;
  return c;
}

// The backup by the data directory itself: no service holds it.
int BackupOffline(const Config& c, const std::string& into, int keep, bool json,
                  const std::string& why) {
  // Never a backup of a log made here by opening it: an empty backup
  // would pass for the newest, and --keep would drop the real ones.
  if (Status found = FindLogAt(c.data_dir()); !found.ok()) {
    std::cerr << "dfm backup: " << why << ", and " << found.message() << "\n";
    return 2;
  }
  std::unique_ptr<RocksDbKeyStore> ks;
  Status s = RocksDbKeyStore::Open(KeyStorePath(c.data_dir()), false, &ks);
  std::shared_ptr<RocksDbKeyStore> keys = std::move(ks);
  RocksDbLogOptions o;
  o.path = c.data_dir();
  o.keys = keys;
  std::unique_ptr<RocksDbEventLog> log;
  if (s.ok()) s = RocksDbEventLog::Open(o, &log);
  if (!s.ok()) {
    std::cerr << "dfm backup: " << why << ", and the data directory cannot be opened: "
              << s.ToString() << "\n";
    return 2;
  }
  BackupManifest m;
  s = CreateBackup(log.get(), keys.get(), c.data_dir(), into, SystemClock::Instance()->NowMicros(),
                   DFM_VERSION_STRING, keep, &m);
  log->Close();
  if (!s.ok()) {
    std::cerr << "dfm backup: " << s.ToString() << "\n";
    return 2;
  }
  PrintManifest(m, json, std::cout);
  return 0;
}

int RunBackup(const std::string& config_path, std::string into, int keep, bool json) {
  std::optional<Config> c = Load(config_path);
  if (!c) return 2;
  into = std::filesystem::absolute(into).lexically_normal().string();
  if (!into.empty() && into.back() == '/') into.pop_back();
  const std::string base = AdminBaseUrl(c->server());
  const std::string body = JsonObject().Str("into", into).Int("keep", keep).Finish();
  ServiceAnswer a = AskService(c->data_dir(), base, "POST", "/v1/admin/backup", body, kBackupTimeoutMs);
  if (a.http.status == 0)
    return BackupOffline(*c, into, keep, json, "no service answers at " + base);
  if (a.http.status != 200) {
    std::cerr << "dfm backup: the service answered HTTP " << a.http.status << ": " << a.http.body << "\n";
    return 2;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element answer, backup;
  BackupManifest m;
  if (parser.parse(a.http.body).get(answer) != simdjson::SUCCESS ||
      answer["backup"].get(backup) != simdjson::SUCCESS ||
      !DecodeBackupManifest(simdjson::minify(backup), &m).ok()) {
    std::cerr << "dfm backup: the service's answer holds no manifest: " << a.http.body << "\n";
    return 2;
  }
  PrintManifest(m, json, std::cout);
  return 0;
}

int RunList(const std::string& dir, bool json) {
  std::vector<BackupManifest> all;
  Status s = ListBackups(dir, &all);
  if (!s.ok()) {
    std::cerr << "dfm backup list: " << s.ToString() << "\n";
    return 2;
  }
  for (const BackupManifest& m : all) PrintManifest(m, json, std::cout);
  return 0;
}

int RunVerify(const std::string& dir, uint32_t id, bool json) {
  BackupCheck check;
  Status s = CheckBackup(dir, id, &check);
  if (!s.ok()) {
    std::cerr << "dfm backup verify: " << s.ToString() << "\n";
    return 2;
  }
  const bool ok = check.problem.empty();
  if (json) {
    JsonObject o;
    o.Bool("ok", ok).UInt("id", check.backup.id).UInt("events", check.events)
        .UInt("last_seq", check.backup.last_seq).Str("head_hash", check.backup.head_hash);
    if (!ok) o.Str("problem", check.problem);
    std::cout << o.Finish() << "\n";
  } else if (ok) {
    std::cout << "backup " << check.backup.id << " is sound: every file's checksum, " << check.events
              << " events with the hash chain intact up to seq " << check.backup.last_seq
              << " (head " << check.backup.head_hash << "), the key store opens\n";
  } else {
    std::cout << "backup " << check.backup.id << " is NOT sound: " << check.problem << "\n";
  }
  return ok ? 0 : 1;
}

void PrintRestore(const RestoreReport& r, const std::string& data_dir, bool json) {
  if (json) {
    JsonObject o;
    o.UInt("backup_id", r.backup.id)
        .UInt("backup_last_seq", r.backup.last_seq)
        .Str("data_dir", data_dir)
        .Str("moved_aside", r.moved_aside)
        .Str("earlier_aside", r.earlier_aside)
        .UInt("high_water_before", r.high_water_before)
        .UInt("erasures_appended", r.erasures_appended)
        .UInt("restored_seq", r.restored_seq);
    if (r.lost_to != 0) o.UInt("lost_from", r.lost_from).UInt("lost_to", r.lost_to);
    std::cout << o.Finish() << "\n";
    return;
  }
  std::cout << "restored backup " << r.backup.id << " into " << data_dir << ": events 1.."
            << r.backup.last_seq << "\n";
  if (!r.moved_aside.empty())
    std::cout << "the directory it replaced is at " << r.moved_aside << " (remove it when done)\n";
  if (!r.earlier_aside.empty())
    std::cout << "an earlier restore stopped before it moved the directory it replaced aside: "
                 "that directory is now at "
              << r.earlier_aside
              << " (what it acknowledged after its backup is there: `dfm log verify` it)\n";
  if (r.lost_to != 0)
    std::cout << "LOST: events " << r.lost_from << ".." << r.lost_to
              << " were acknowledged after the backup and are not in it; have the vendors send "
                 "them again (`dfm backfill`, docs/backup.md)\n";
  if (r.erasures_appended > 0)
    std::cout << r.erasures_appended << " erasures made after the backup were applied again\n";
  std::cout << "recorded as log.restored (seq " << r.restored_seq << "); start the service\n";
}

}  // namespace

struct BackupCommands::Impl {
  std::string* config_path = nullptr;
  CLI::App* backup = nullptr;
  CLI::App* list = nullptr;
  CLI::App* verify = nullptr;
  CLI::App* restore = nullptr;
  std::string into, dir, data_dir;
  std::vector<std::string> ledgers;
  uint32_t id = 0;
  int keep = 0;
  bool json = false, replace = false;
};

BackupCommands::BackupCommands(CLI::App* app, std::string* config_path) : impl_(new Impl) {
  Impl& m = *impl_;
  m.config_path = config_path;
  m.backup = app->add_subcommand("backup", "Back up the data directory, list or verify backups (docs/backup.md)");
  m.backup->add_option("-c,--config", *config_path, "configuration file");
  m.backup->add_option("--into", m.into, "backup directory (incremental: add to it again)");
  m.backup->add_option("--keep", m.keep, "keep the newest N backups (0: all)");
  m.backup->add_flag("--json", m.json, "the manifest as JSON");
  m.list = m.backup->add_subcommand("list", "The backups in DIR");
  m.list->add_option("dir", m.dir, "backup directory")->required();
  m.list->add_flag("--json", m.json, "one manifest per line");
  m.verify = m.backup->add_subcommand("verify", "Check a backup's files, hash chain and manifest");
  m.verify->add_option("dir", m.dir, "backup directory")->required();
  m.verify->add_option("--id", m.id, "which backup (default: the newest)");
  m.verify->add_flag("--json", m.json, "one JSON object");
  m.restore = app->add_subcommand("restore", "Restore a backup onto a stopped service (docs/backup.md)");
  m.restore->add_option("dir", m.dir, "backup directory")->required();
  m.restore->add_option("-c,--config", *config_path, "configuration file (its storage.data_dir)");
  m.restore->add_option("-d,--data-dir", m.data_dir, "data directory to restore into");
  m.restore->add_option("--id", m.id, "which backup (default: the newest)");
  m.restore->add_flag("--replace", m.replace, "move a data directory that is there aside");
  m.restore->add_option("--erasures", m.ledgers, "another erasure ledger to honour");
  m.restore->add_flag("--json", m.json, "one JSON object");
}

BackupCommands::~BackupCommands() = default;

int BackupCommands::Run() {
  Impl& m = *impl_;
  if (m.list->parsed()) return RunList(m.dir, m.json);
  if (m.verify->parsed()) return RunVerify(m.dir, m.id, m.json);
  if (m.backup->parsed()) {
    if (m.into.empty()) {
      std::cerr << "dfm backup: --into DIR is required\n";
      return 2;
    }
    return RunBackup(*m.config_path, m.into, m.keep, m.json);
  }
  if (!m.restore->parsed()) return -1;
  std::string data_dir = m.data_dir;
  if (data_dir.empty()) {
    std::optional<Config> c = Load(*m.config_path);
    if (!c) return 2;
    data_dir = c->data_dir();
  }
  RestoreOptions o;
  o.id = m.id;
  o.replace = m.replace;
  o.ledgers = m.ledgers;
  o.now_us = SystemClock::Instance()->NowMicros();
  RestoreReport r;
  Status s = RestoreDataDir(m.dir, data_dir, o, &r);
  if (!s.ok()) {
    std::cerr << "dfm restore: " << s.ToString() << "\n";
    return 2;
  }
  PrintRestore(r, data_dir, m.json);
  return 0;
}

std::string VersionString() { return DFM_VERSION_STRING; }

std::string VersionText() {
  return std::string("dfm ") + DFM_VERSION_STRING +
         "\nformats read and written: event record " + std::to_string(kRecordFormatVersion) +
         ", webhook.received schema " + std::to_string(WebhookReceived::kSchemaVersion) +
         ", key store " + std::to_string(kKeyStoreFormat) + ", contact snapshot rules " +
         std::to_string(kContactRulesVersion) + ", high-water mark 1, erasure ledger 1, backup "
         "manifest " + std::to_string(BackupManifest::kVersion) +
         "; cluster mode: ingest message 3 (and 2, 1), log chunk 1, shared key store " +
         std::to_string(kSharedKeyStoreFormat);
}

}  // namespace dfm
