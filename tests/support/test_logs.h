// Event logs for tests: either implementation by name, so a contract test
// runs against both.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "storage/memory_event_log.h"
#include "storage/rocksdb_event_log.h"
#include "tests/support/temp_dir.h"

namespace dfm::testing {

// A RocksDB log at `path`, opened for writing (null, and the test failed,
// if it does not open).
inline std::unique_ptr<RocksDbEventLog> OpenRocks(const std::string& path) {
  RocksDbLogOptions o;
  o.path = path;
  std::unique_ptr<RocksDbEventLog> log;
  Status s = RocksDbEventLog::Open(o, &log);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return log;
}

// "memory" or "rocksdb" (in dir/db).
inline std::unique_ptr<EventLog> OpenTestLog(const std::string& kind, const TempDir& dir) {
  if (kind == "memory") return std::make_unique<MemoryEventLog>();
  return OpenRocks(dir.Sub("db"));
}

}  // namespace dfm::testing
