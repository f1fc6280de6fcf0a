#include "storage/backup.h"

#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/utilities/backup_engine.h>
#include <rocksdb/utilities/checkpoint.h>
#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string_view>

#include "events/codec.h"
#include "storage/data_dir.h"
#include "storage/durable_file.h"
#include "storage/erasure_ledger.h"
#include "storage/high_water.h"
#include "storage/key_store.h"
#include "storage/rocksdb_event_log.h"
#include "util/crypto.h"
#include "util/json.h"

namespace dfm {
namespace {

namespace fs = std::filesystem;

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound(what + ": " + s.ToString());
  if (s.IsCorruption()) return Status::Corruption(what + ": " + s.ToString());
  return Status::IOError(what + ": " + s.ToString());
}

uint64_t BytesUnder(const std::string& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec)) n += it->file_size(ec);
  return n;
}

// A BackupEngine over `dir` (created when missing); `read_only` opens it
// for restores and checks.
Status OpenEngine(const std::string& dir, std::unique_ptr<rocksdb::BackupEngine>* out) {
  rocksdb::BackupEngineOptions o(dir);
  o.sync = true;
  o.max_background_operations = 2;
  rocksdb::BackupEngine* be = nullptr;
  Status s = FromRocks(rocksdb::BackupEngine::Open(o, rocksdb::Env::Default(), &be),
                       "cannot open the backup directory " + dir);
  if (s.ok()) out->reset(be);
  return s;
}

Status OpenEngineReadOnly(const std::string& dir,
                          std::unique_ptr<rocksdb::BackupEngineReadOnly>* out) {
  if (!fs::exists(dir + "/meta")) return Status::NotFound("no backups in " + dir);
  rocksdb::BackupEngineOptions o(dir);
  rocksdb::BackupEngineReadOnly* be = nullptr;
  Status s = FromRocks(rocksdb::BackupEngineReadOnly::Open(o, rocksdb::Env::Default(), &be),
                       "cannot open the backup directory " + dir);
  if (s.ok()) out->reset(be);
  return s;
}

Status Checkpoint(rocksdb::DB* db, const std::string& dir) {
  rocksdb::Checkpoint* cp = nullptr;
  Status s = FromRocks(rocksdb::Checkpoint::Create(db, &cp), "checkpoint");
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::Checkpoint> owned(cp);
  // 0: always flush first, so the checkpoint needs no WAL replay.
  return FromRocks(owned->CreateCheckpoint(dir, 0), "cannot make a checkpoint in " + dir);
}

// Backs up `db` into the engine at `dir`; *id and *bytes of the new backup.
Status BackupDb(rocksdb::DB* db, const std::string& dir, const std::string& metadata, uint32_t* id,
                uint64_t* bytes) {
  std::unique_ptr<rocksdb::BackupEngine> be;
  Status s = OpenEngine(dir, &be);
  if (!s.ok()) return s;
  rocksdb::CreateBackupOptions co;
  co.flush_before_backup = false;  // a checkpoint: flushed already, nothing writes it
  rocksdb::BackupID made = 0;
  s = FromRocks(be->CreateNewBackupWithMetadata(co, db, metadata, &made), "backup into " + dir);
  if (!s.ok()) return s;
  rocksdb::BackupInfo info;
  s = FromRocks(be->GetBackupInfo(made, &info), "backup info");
  *id = made;
  *bytes = info.size;
  return s;
}

Status Purge(const std::string& dir, int keep) {
  std::unique_ptr<rocksdb::BackupEngine> be;
  Status s = OpenEngine(dir, &be);
  if (s.ok()) s = FromRocks(be->PurgeOldBackups(static_cast<uint32_t>(keep)), "purge " + dir);
  return s;
}

std::string ManifestPath(const std::string& dir, uint32_t id) {
  return dir + "/manifests/" + std::to_string(id) + ".json";
}

Status ReadManifest(const std::string& dir, uint32_t id, BackupManifest* m) {
  std::ifstream in(ManifestPath(dir, id));
  if (!in) return Status::NotFound("backup " + std::to_string(id) + " has no manifest in " + dir);
  std::stringstream ss;
  ss << in.rdbuf();
  return DecodeBackupManifest(ss.str(), m);
}

// Removes the manifests a purge left: those of backups older than the
// oldest the log's engine holds, sound or read as damaged (a purge leaves
// a damaged one, and it may read again: it keeps its manifest). Best
// effort: what it cannot remove stays, and is tried again after the next
// backup.
void RemovePurgedManifests(const std::string& dir) {
  std::unique_ptr<rocksdb::BackupEngineReadOnly> be;
  if (!OpenEngineReadOnly(dir + "/log", &be).ok()) return;
  std::vector<rocksdb::BackupInfo> infos;
  be->GetBackupInfo(&infos);
  if (infos.empty()) return;
  std::vector<rocksdb::BackupID> damaged;
  be->GetCorruptedBackups(&damaged);
  uint32_t oldest = std::numeric_limits<uint32_t>::max();
  for (const rocksdb::BackupInfo& info : infos) oldest = std::min(oldest, info.backup_id);
  for (rocksdb::BackupID id : damaged) oldest = std::min(oldest, id);
  std::error_code ec;
  std::vector<fs::path> purged;
  for (fs::directory_iterator it(dir + "/manifests", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    uint32_t id = 0;
    const auto [p, err] = std::from_chars(name.data(), name.data() + name.size(), id);
    if (err == std::errc() && std::string_view(p) == ".json" && id < oldest)
      purged.push_back(it->path());
  }
  for (const fs::path& p : purged) fs::remove(p, ec);
}

// The manifest of backup `id`, or of the newest when 0.
Status PickManifest(const std::string& dir, uint32_t id, BackupManifest* m) {
  if (id != 0) return ReadManifest(dir, id, m);
  std::vector<BackupManifest> all;
  Status s = ListBackups(dir, &all);
  if (!s.ok()) return s;
  *m = all.back();
  return Status::OK();
}

// Takes the checkpoints of the live databases, then backs them up.
Status BackupCheckpoints(const std::string& staging, const std::string& into,
                         BackupManifest* m) {
  RocksDbLogOptions lo;
  lo.path = staging + "/log";
  std::unique_ptr<RocksDbEventLog> copy;
  Status s = RocksDbEventLog::Open(lo, &copy);
  if (!s.ok()) return s;
  m->last_seq = copy->LastSequence();
  if (m->last_seq > 0) {
    s = copy->ScanRecords(m->last_seq, [m](uint64_t, std::string_view record) {
      m->head_hash = HexEncode(RecordHash(record));
      return false;
    });
  }
  const std::string meta = EncodeBackupManifest(*m);
  if (s.ok())
    s = copy->WithDb([&](rocksdb::DB* db) {
      return BackupDb(db, into + "/log", meta, &m->id, &m->log_bytes);
    });
  copy->Close();
  copy.reset();
  if (!s.ok()) return s;
  std::unique_ptr<RocksDbKeyStore> keys;
  s = RocksDbKeyStore::Open(staging + "/keys", false, &keys);
  if (!s.ok()) return s;
  m->erasures_through = keys->ErasuresThrough();
  return keys->WithDb([&](rocksdb::DB* db) {
    return BackupDb(db, into + "/keys", meta, &m->keys_id, &m->keys_bytes);
  });
}

}  // namespace

std::string EncodeBackupManifest(const BackupManifest& m) {
  return JsonObject()
             .Str("format", "dfm-backup")
             .Int("version", BackupManifest::kVersion)
             .UInt("id", m.id)
             .UInt("keys_id", m.keys_id)
             .Int("created_at_us", m.created_at_us)
             .UInt("last_seq", m.last_seq)
             .Str("head_hash", m.head_hash)
             .UInt("record_format", m.record_format)
             .UInt("key_store_format", m.key_store_format)
             .UInt("erasures_through", m.erasures_through)
             .UInt("log_bytes", m.log_bytes)
             .UInt("keys_bytes", m.keys_bytes)
             .UInt("added_bytes", m.added_bytes)
             .Str("dfm_version", m.dfm_version)
             .Finish() +
         "\n";
}

Status DecodeBackupManifest(std::string_view text, BackupManifest* out) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  std::string_view format, head, version_text;
  int64_t version = 0;
  uint64_t id = 0, keys_id = 0, record_format = 0, key_store_format = 0;
  if (parser.parse(text.data(), text.size()).get(o) != simdjson::SUCCESS ||
      o["format"].get(format) != simdjson::SUCCESS || format != "dfm-backup")
    return Status::Corruption("not a dfm backup manifest");
  if (o["version"].get(version) != simdjson::SUCCESS || version != BackupManifest::kVersion)
    return Status::Corruption("backup manifest of unknown version " + std::to_string(version));
  if (o["id"].get(id) != simdjson::SUCCESS || o["keys_id"].get(keys_id) != simdjson::SUCCESS ||
      o["created_at_us"].get(out->created_at_us) != simdjson::SUCCESS ||
      o["last_seq"].get(out->last_seq) != simdjson::SUCCESS ||
      o["head_hash"].get(head) != simdjson::SUCCESS ||
      o["record_format"].get(record_format) != simdjson::SUCCESS ||
      o["key_store_format"].get(key_store_format) != simdjson::SUCCESS ||
      o["erasures_through"].get(out->erasures_through) != simdjson::SUCCESS ||
      o["log_bytes"].get(out->log_bytes) != simdjson::SUCCESS ||
      o["keys_bytes"].get(out->keys_bytes) != simdjson::SUCCESS ||
      o["added_bytes"].get(out->added_bytes) != simdjson::SUCCESS ||
      o["dfm_version"].get(version_text) != simdjson::SUCCESS)
    return Status::Corruption("backup manifest lacks a field");
  out->id = static_cast<uint32_t>(id);
  out->keys_id = static_cast<uint32_t>(keys_id);
  out->record_format = static_cast<uint32_t>(record_format);
  out->key_store_format = static_cast<uint32_t>(key_store_format);
  out->head_hash = std::string(head);
  out->dfm_version = std::string(version_text);
  return Status::OK();
}

Status CreateBackup(RocksDbEventLog* log, RocksDbKeyStore* keys, const std::string& data_dir,
                    const std::string& into, int64_t now_us, const std::string& dfm_version,
                    int keep, BackupManifest* out) {
  std::error_code ec;
  const std::string staging = data_dir + "/" + kBackupStagingDir;
  fs::remove_all(staging, ec);  // a backup that died halfway
  fs::create_directories(staging, ec);
  if (!ec) fs::create_directories(into + "/manifests", ec);
  if (ec) return Status::IOError("cannot create " + staging + " or " + into + ": " + ec.message());
  const uint64_t before = BytesUnder(into);
  BackupManifest m;
  m.created_at_us = now_us;
  m.record_format = kRecordFormatVersion;
  m.key_store_format = kKeyStoreFormat;
  m.dfm_version = dfm_version;
  // The log first: every key its records name was made before them, so the
  // key store's later checkpoint holds it (unless erased meanwhile).
  Status s = log->WithDb([&](rocksdb::DB* db) { return Checkpoint(db, staging + "/log"); });
  if (s.ok()) s = keys->WithDb([&](rocksdb::DB* db) { return Checkpoint(db, staging + "/keys"); });
  if (s.ok()) s = BackupCheckpoints(staging, into, &m);
  fs::remove_all(staging, ec);
  if (!s.ok()) return s;
  std::vector<LedgerEntry> erasures;
  s = ReadErasureLedger(ErasureLedgerPath(data_dir), &erasures);
  if (s.ok()) s = AddToErasureLedger(into + "/" + kErasureLedgerFile, erasures);
  if (!s.ok()) return s;
  // The new backup is listed (its manifest durable) before any older one
  // is purged: a purge that fails, or a crash, never leaves no backup.
  m.added_bytes = BytesUnder(into) - std::min(before, BytesUnder(into));
  s = ReplaceFileDurably(ManifestPath(into, m.id), EncodeBackupManifest(m));
  if (s.ok() && keep > 0) s = Purge(into + "/log", keep);
  if (s.ok() && keep > 0) s = Purge(into + "/keys", keep);
  if (s.ok() && keep > 0) RemovePurgedManifests(into);
  if (s.ok()) *out = m;
  return s;
}

Status ListBackups(const std::string& dir, std::vector<BackupManifest>* out) {
  out->clear();
  std::unique_ptr<rocksdb::BackupEngineReadOnly> be;
  Status s = OpenEngineReadOnly(dir + "/log", &be);
  if (!s.ok()) return s;
  std::vector<rocksdb::BackupInfo> infos;
  be->GetBackupInfo(&infos);
  for (const rocksdb::BackupInfo& info : infos) {
    BackupManifest m;
    if (ReadManifest(dir, info.backup_id, &m).ok()) out->push_back(std::move(m));
  }
  if (out->empty()) return Status::NotFound("no backups in " + dir);
  std::sort(out->begin(), out->end(),
            [](const BackupManifest& a, const BackupManifest& b) { return a.id < b.id; });
  return Status::OK();
}

Status RestoreBackupFiles(const std::string& dir, uint32_t id, const std::string& data_dir,
                          BackupManifest* restored) {
  std::error_code ec;
  if (fs::exists(data_dir, ec) && !fs::is_empty(data_dir, ec))
    return Status::AlreadyExists(data_dir + " is not empty");
  BackupManifest m;
  Status s = PickManifest(dir, id, &m);
  if (!s.ok()) return s;
  fs::create_directories(data_dir, ec);
  if (!ec) fs::permissions(data_dir, fs::perms::owner_all, ec);
  if (ec) return Status::IOError("cannot create " + data_dir + ": " + ec.message());
  std::unique_ptr<rocksdb::BackupEngineReadOnly> log_be, keys_be;
  s = OpenEngineReadOnly(dir + "/log", &log_be);
  if (s.ok()) s = OpenEngineReadOnly(dir + "/keys", &keys_be);
  if (!s.ok()) return s;
  s = FromRocks(log_be->RestoreDBFromBackup(m.id, data_dir, data_dir), "restore of the log");
  const std::string keys_dir = KeyStorePath(data_dir);
  if (s.ok()) s = FromRocks(keys_be->RestoreDBFromBackup(m.keys_id, keys_dir, keys_dir),
                            "restore of the key store");
  if (s.ok()) fs::permissions(keys_dir, fs::perms::owner_all, ec);
  if (s.ok()) s = WriteHighWater(data_dir, m.last_seq);
  if (s.ok()) *restored = m;
  return s;
}

Status VerifyBackupFiles(const std::string& dir, uint32_t id, BackupManifest* checked) {
  BackupManifest m;
  Status s = PickManifest(dir, id, &m);
  std::unique_ptr<rocksdb::BackupEngineReadOnly> log_be, keys_be;
  if (s.ok()) s = OpenEngineReadOnly(dir + "/log", &log_be);
  if (s.ok()) s = OpenEngineReadOnly(dir + "/keys", &keys_be);
  if (s.ok()) s = FromRocks(log_be->VerifyBackup(m.id, true), "the log's files");
  if (s.ok()) s = FromRocks(keys_be->VerifyBackup(m.keys_id, true), "the key store's files");
  if (s.ok()) *checked = m;
  return s;
}

}  // namespace dfm
