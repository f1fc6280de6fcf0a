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

// "memory" or "rocksdb" (in dir/db).
inline std::unique_ptr<EventLog> OpenTestLog(const std::string& kind, const TempDir& dir) {
  if (kind == "memory") return std::make_unique<MemoryEventLog>();
  RocksDbLogOptions o;
  o.path = dir.Sub("db");
  std::unique_ptr<RocksDbEventLog> r;
  Status s = RocksDbEventLog::Open(o, &r);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return r;
}

}  // namespace dfm::testing
