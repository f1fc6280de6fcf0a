// `dfm log verify` and `dfm log dump` on a real RocksDB directory, including
// one whose stored bytes were tampered with behind the service's back.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <sstream>

#include "events/codec.h"
#include "replay-tools/log_commands.h"
#include "storage/rocksdb_event_log.h"
#include "tests/support/temp_dir.h"
#include "util/coding.h"

namespace dfm {
namespace {

void Fill(const std::string& path, int n) {
  RocksDbLogOptions o;
  o.path = path;
  std::unique_ptr<RocksDbEventLog> log;
  ASSERT_TRUE(RocksDbEventLog::Open(o, &log).ok());
  for (int i = 0; i < n; ++i) {
    EventDraft d;
    d.tenant = "default";
    d.stream = "source:verity";
    d.type = "test.event";
    d.payload = "payload-" + std::to_string(i);
    ASSERT_TRUE(log->Append(std::move(d), nullptr).ok());
  }
}

// Rewrites record `seq` with a changed payload, directly in RocksDB.
void Tamper(const std::string& path, uint64_t seq) {
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfds;
  for (const auto& n : names) cfds.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path, cfds, &handles, &db).ok());
  rocksdb::ColumnFamilyHandle* events = nullptr;
  for (auto* h : handles)
    if (h->GetName() == "events") events = h;
  std::string key = EncodeFixed64BE(seq), rec;
  ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), events, key, &rec).ok());
  Event e;
  ASSERT_TRUE(DecodeRecord(rec, &e).ok());
  e.payload = "tampered";
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), events, key, EncodeRecord(e)).ok());
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
}

TEST(LogCommands, VerifyIntactThenNamesFirstBreak) {
  testing::TempDir dir;
  std::string path = dir.Sub("data");
  Fill(path, 6);
  std::ostringstream out, err;
  EXPECT_EQ(RunLogVerify(path, false, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("hash chain intact: 6 events, seq 1..6"), std::string::npos) << out.str();

  Tamper(path, 3);
  std::ostringstream out2, err2;
  EXPECT_EQ(RunLogVerify(path, true, out2, err2), 1);
  // Record 3 still decodes; record 4 no longer links to it.
  EXPECT_NE(out2.str().find("\"first_bad_seq\":4"), std::string::npos) << out2.str();
  EXPECT_NE(out2.str().find("\"ok\":false"), std::string::npos);
}

TEST(LogCommands, DumpWhileTheServiceHoldsTheLog) {
  testing::TempDir dir;
  std::string path = dir.Sub("data");
  RocksDbLogOptions o;
  o.path = path;
  std::unique_ptr<RocksDbEventLog> live;
  ASSERT_TRUE(RocksDbEventLog::Open(o, &live).ok());  // holds the primary's lock
  EventDraft d;
  d.tenant = "default";
  d.stream = "s";
  d.type = "test.event";
  ASSERT_TRUE(live->Append(d, nullptr).ok());
  ASSERT_TRUE(live->Append(d, nullptr).ok());
  std::ostringstream out, err;
  EXPECT_EQ(RunLogDump(path, 2, 10, false, out, err), 0) << err.str();
  EXPECT_EQ(out.str().find("\"seq\":1,"), std::string::npos);
  EXPECT_NE(out.str().find("\"seq\":2,"), std::string::npos);
  std::ostringstream out2, err2;
  EXPECT_EQ(RunLogVerify(dir.Sub("missing"), false, out2, err2), 2);
  EXPECT_NE(err2.str().find("no event log"), std::string::npos);
}

}  // namespace
}  // namespace dfm
