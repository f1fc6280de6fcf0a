// Restores and checks of backups (storage/backup.h, docs/backup.md): what
// `dfm restore` and `dfm backup verify` do beyond copying files.
//
// A restore never brings back an erased person: the erasures of the
// ledgers it is given (the replaced data directory's, the backup
// directory's, any named) that the restored log lacks are appended to it
// again as contact.erased events and carried out (their keys destroyed,
// ApplyErasures) before the restore returns. It records itself as a
// log.restored event with the loss it implies: the events the replaced
// data directory had acknowledged (its high-water mark) past the backup.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/backup.h"
#include "util/status.h"

namespace dfm {

inline constexpr char kLogRestoredType[] = "log.restored";

struct RestoreOptions {
  uint32_t id = 0;  // 0: the newest backup
  // A data directory that holds something is moved aside to
  // "<data_dir>.replaced-<UTC time>" (kept for the operator to remove);
  // without it the restore refuses.
  bool replace = false;
  std::vector<std::string> ledgers;  // more erasure ledgers to honour
  int64_t now_us = 0;
};

struct RestoreReport {
  BackupManifest backup;
  std::string moved_aside;         // where the replaced directory went; "" if none
  // Where the directory an earlier, interrupted restore replaced went (it
  // was still at <data_dir>.restoring); "" if none.
  std::string earlier_aside;
  uint64_t high_water_before = 0;  // the replaced directory's mark; 0: none
  uint64_t lost_from = 0, lost_to = 0;  // acknowledged and not in the backup; 0: none
  size_t erasures_appended = 0;    // erasures after the backup, appended again
  uint64_t erasures_applied = 0;   // contact.erased events carried out
  uint64_t restored_seq = 0;       // the log.restored event
};

// REQUIRES: no service runs on `data_dir` (its lock is checked).
Status RestoreDataDir(const std::string& backup_dir, const std::string& data_dir,
                      const RestoreOptions& options, RestoreReport* report);

struct BackupCheck {
  BackupManifest backup;
  uint64_t events = 0;
  std::string problem;  // "" when the backup is sound
};

// Checks backup `id` (0: the newest): every file's checksum, then a copy
// restored into a scratch directory beside `backup_dir`: the hash chain
// verifies and ends at the manifest's last_seq and head_hash, and its key
// store opens. OK with check->problem set when the backup is not sound.
Status CheckBackup(const std::string& backup_dir, uint32_t id, BackupCheck* check);

}  // namespace dfm
