// Small files written durably (the high-water mark, the erasure ledger,
// backup manifests) and their checked lines. Pure file I/O: no RocksDB
// inside.
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace dfm {

// Writes all of `data` to `fd` (EINTR retried). False on any failure
// (errno says why).
bool WriteAllTo(int fd, std::string_view data);

// fsync of the directory `dir`, so that a file made or renamed in it stays.
Status SyncDirectory(const std::string& dir);

// Replaces `path` with `text`, mode 0600: a temporary file beside it,
// synced, renamed over `path`, then the directory synced. A crash leaves
// the old file or the new one, never a mix.
Status ReplaceFileDurably(const std::string& path, std::string_view text);

// Whether files in `dir` can be written around the page cache (O_DIRECT):
// a probe file made in it, one aligned 4 KiB block written and synced,
// the file removed. False where the open or the write is refused (ramfs,
// tmpfs before Linux 6.6, some network file systems) or `dir` cannot be
// written. The probe's name begins with kDirectProbePrefix: a crash may
// leave it behind, and the log's next writable open removes it.
bool TakesDirectWrites(const std::string& dir);
inline constexpr char kDirectProbePrefix[] = ".direct-probe-";

// One checked line of a small append-only file (the erasure ledger, the
// access log):
//
//   line := crc SP json LF
//   crc  := 8HEXDIG          ; CRC-32C of `json`, lower case
//
// CrcLine makes it; SplitCrcLine gives the json of a whole line whose crc
// matches, Corruption otherwise (a line cut short by a crash).
std::string CrcLine(std::string_view json);
Status SplitCrcLine(const std::string& line, std::string_view* json);

}  // namespace dfm
