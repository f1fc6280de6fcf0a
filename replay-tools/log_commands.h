// `dfm log ...`: read-only commands over a data directory. They open the log
// as a RocksDB secondary, so they never disturb a running service.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

namespace dfm {

// Walks the hash chain; prints a summary, or the first break with its
// sequence number. Returns the process exit code (0 intact, 1 broken, 2 error).
int RunLogVerify(const std::string& data_dir, bool json, std::ostream& out, std::ostream& err);

// Prints events with seq >= from as JSON lines. Returns the exit code.
int RunLogDump(const std::string& data_dir, uint64_t from, uint64_t limit, bool with_body,
               std::ostream& out, std::ostream& err);

}  // namespace dfm
