// Backups of a data directory (docs/backup.md): the event log and the key
// store, each by RocksDB's BackupEngine (incremental: a table file already
// in the backup directory is not copied again), taken from checkpoints of
// the live databases, so a backup is consistent while the service appends.
//
// A backup directory:
//   log/                  BackupEngine of the event log
//   keys/                 BackupEngine of the key store
//   manifests/<id>.json   one manifest per backup (below); <id> is the log's
//   ERASURES              the erasure ledger as of the newest backup
//                         (storage/erasure_ledger.h)
//
// manifest := one JSON object, LF:
//   {"format": "dfm-backup", "version": 1, "id": uint, "keys_id": uint,
//    "created_at_us": int, "last_seq": uint, "head_hash": hex64,
//    "record_format": uint, "key_store_format": uint,
//    "erasures_through": uint, "log_bytes": uint, "keys_bytes": uint,
//    "added_bytes": uint, "dfm_version": str}
// `last_seq` and `head_hash`: the backup's log ends with that record and
// holds every event acknowledged before the backup began. `*_bytes`: the
// backup's files (shared ones included); `added_bytes`: what this backup
// added to the directory. No RocksDB type in this header; no actors.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace dfm {

class RocksDbEventLog;
class RocksDbKeyStore;

struct BackupManifest {
  static constexpr int kVersion = 1;
  uint32_t id = 0;
  uint32_t keys_id = 0;
  int64_t created_at_us = 0;
  uint64_t last_seq = 0;
  std::string head_hash;  // hex of the last record's SHA-256; "" for an empty log
  uint32_t record_format = 0;
  uint32_t key_store_format = 0;
  uint64_t erasures_through = 0;
  uint64_t log_bytes = 0, keys_bytes = 0, added_bytes = 0;
  std::string dfm_version;
};

std::string EncodeBackupManifest(const BackupManifest& m);
Status DecodeBackupManifest(std::string_view text, BackupManifest* out);

// Backs up the open `log` and `keys` of `data_dir` into `into` (created when
// missing). Checkpoints are made under <data_dir>/backup-staging (the same
// file system: hard links) and removed after. The ledger of `data_dir` is
// copied into `into`. `keep` > 0: older backups beyond the newest `keep`
// are deleted (their files not shared with those kept).
Status CreateBackup(RocksDbEventLog* log, RocksDbKeyStore* keys, const std::string& data_dir,
                    const std::string& into, int64_t now_us, const std::string& dfm_version,
                    int keep, BackupManifest* out);

// The backups in `dir`, oldest first. NotFound when `dir` holds none.
Status ListBackups(const std::string& dir, std::vector<BackupManifest>* out);

// Restores backup `id` (0: the newest) of `dir` into `data_dir`, which must
// be missing or empty: the log, its key store (<data_dir>/keys) and a
// high-water mark at the manifest's last_seq. Nothing else is done to it.
Status RestoreBackupFiles(const std::string& dir, uint32_t id, const std::string& data_dir,
                          BackupManifest* restored);

// Reads every file of backup `id` (0: the newest) and checks its checksum.
Status VerifyBackupFiles(const std::string& dir, uint32_t id, BackupManifest* checked);

}  // namespace dfm
