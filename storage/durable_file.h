// Small files written durably (the high-water mark, the erasure ledger,
// backup manifests). Pure file I/O: no RocksDB inside.
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

}  // namespace dfm
