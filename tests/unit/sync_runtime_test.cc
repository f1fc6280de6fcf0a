// SyncRuntime::Start's `cancel` (a partition stopping while it starts): set,
// the start decides nothing on projections short of the log's head.
#include "app/sync_runtime.h"

#include <gtest/gtest.h>

#include <atomic>

#include "config/config.h"
#include "storage/rocksdb_event_log.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

TEST(SyncRuntimeStart, ACancelledStartStartsNoSync) {
  testing::TempDir dir;
  std::vector<ConfigProblem> problems;
  const Config config = Config::Load("", {{"DFM_STORAGE_DATA_DIR", dir.Sub("data")}}, &problems);
  for (const auto& p : problems) ASSERT_FALSE(p.error) << p.key << ": " << p.message;
  ASSERT_TRUE(config.sync().enabled);
  RocksDbLogOptions lo;
  lo.path = config.data_dir();
  std::unique_ptr<RocksDbEventLog> log;
  ASSERT_TRUE(RocksDbEventLog::Open(lo, &log).ok());
  std::atomic<bool> cancel{true};
  std::unique_ptr<SyncRuntime> sync;
  Status s =
      SyncRuntime::Start(config, log.get(), &sync, nullptr, "", nullptr, nullptr, {}, &cancel);
  EXPECT_FALSE(s.ok()) << "a cancelled start went on to start the sync";
  EXPECT_EQ(sync, nullptr);
  cancel.store(false);
  s = SyncRuntime::Start(config, log.get(), &sync, nullptr, "", nullptr, nullptr, {}, &cancel);
  ASSERT_TRUE(s.ok()) << s.ToString();
  sync->Stop();
}

}  // namespace
}  // namespace dfm
