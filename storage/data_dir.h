// The data directory holds webhook bodies (personal data) and OAuth grants:
// its owner's alone. The service creates it 0700 and, under its umask of
// 077, every file in it 0600; a directory made otherwise is found here so
// that `dfm config check` and `dfm serve` can say so.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace dfm {

// Where a backup makes its checkpoints of the log and the key store (hard
// links to their files), removed when it ends (storage/backup.h). One the
// process died holding is removed when the log next opens writable: its
// links would keep an erased person's key store files (docs/privacy.md).
inline constexpr char kBackupStagingDir[] = "backup-staging";

struct LooseMode {
  std::string path;
  unsigned mode = 0;  // permission bits, e.g. 0755
};

// The directory `dir` and the entries directly in it whose mode gives its
// group or others any access (symbolic links are not followed). Empty when
// there are none, or `dir` does not exist.
std::vector<LooseMode> LooseModes(const std::string& dir);

// A warning for people: "<dir> is open to others (mode 0755) and so are
// 12 files in it (e.g. 000004.log, mode 0644): ...". Empty for none.
std::string DescribeLooseModes(const std::string& dir, const std::vector<LooseMode>& loose);

// OK when an event log is in `dir` (its CURRENT file); NotFound when there
// is none (a tool pointed at another directory must not make one there,
// as a writable open would); IOError when `dir` cannot be read.
Status FindLogAt(const std::string& dir);

// Gives the root-owned files under `dir` to the directory's owner when this
// process runs as root and `dir` is another user's: an offline tool run as root
// (`dfm log recover`, a backup while the service is stopped) must not
// leave files the service's user cannot open (RocksDB rewrites CURRENT,
// MANIFEST, OPTIONS and a WAL at every writable open). Symbolic links are
// never followed, nor given. No-op otherwise. Called once a writable
// database closes.
void KeepOwnersFiles(const std::string& dir);

}  // namespace dfm
