// `dfm log ...`: commands over a data directory. `verify` and `dump` open
// the log as a RocksDB secondary, so they never disturb a running service;
// `recover` writes, so it needs the service stopped.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

namespace dfm {

// The record `dfm log recover` leaves: tenant "default", stream "log".
inline constexpr char kLogStream[] = "log";
inline constexpr std::string_view kLogRecoveredType = "log.recovered";

// Walks the hash chain and checks that the log reaches its high-water mark
// (storage/high_water.h); prints a summary, or the first break with its
// sequence number, or how far short of the mark the log ends. Returns the
// process exit code (0 intact, 1 broken or short, 2 error, a damaged WAL
// among them).
int RunLogVerify(const std::string& data_dir, bool json, std::ostream& out, std::ostream& err);

// The operator's way past a log the service refuses to open for having lost
// acknowledged events (a damaged WAL, or a log that ends before its
// high-water mark): opens what precedes the damage, appends a
// `log.recovered` event that records what was lost (docs/event-format.md),
// and says so. A log that opens as it is is left alone. Returns the exit
// code (0 done or nothing to do, 2 error).
int RunLogRecover(const std::string& data_dir, std::ostream& out, std::ostream& err);

// Prints events with seq >= from as JSON lines. Returns the exit code.
int RunLogDump(const std::string& data_dir, uint64_t from, uint64_t limit, bool with_body,
               std::ostream& out, std::ostream& err);

}  // namespace dfm
