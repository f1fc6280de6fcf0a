// The records connectors create under a real-world key
// (connectors/common/vendor_records.h) over a log's CasStore
// (storage/cas_store.h): claims, settling, releasing, stale take-overs,
// and the stored grammar.
#include <gtest/gtest.h>

#include "connectors/common/vendor_records.h"
#include "storage/cas_store.h"
#include "storage/memory_event_log.h"
#include "storage/rocksdb_event_log.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

TEST(CasStore, CreateOnlyWhenAbsentUpdateOnlyAtTheRevisionRead) {
  MemoryEventLog log;
  auto store = NewLogCasStore(&log, "records");
  CasStore::Entry e;
  ASSERT_TRUE(store->Get("k", &e).ok());
  EXPECT_FALSE(e.present);
  ASSERT_TRUE(store->Create("k", "a").ok());
  EXPECT_EQ(store->Create("k", "b").code(), Status::Code::kAlreadyExists);
  ASSERT_TRUE(store->Get("k", &e).ok());
  EXPECT_EQ(e.value, "a");
  const uint64_t rev = e.rev;
  ASSERT_TRUE(store->Update("k", "c", rev).ok());
  EXPECT_EQ(store->Update("k", "d", rev).code(), Status::Code::kAlreadyExists);  // moved on
  ASSERT_TRUE(store->Get("k", &e).ok());
  EXPECT_EQ(e.value, "c");
  EXPECT_NE(e.rev, rev);
}

TEST(VendorRecords, TheStoredGrammarReadsBackAndRefusesTheRest) {
  VendorRecordValue v;
  v.kind = VendorRecordValue::kCreating;
  v.since_us = 42;
  VendorRecordValue back;
  ASSERT_TRUE(DecodeVendorRecord(EncodeVendorRecord(v), &back));
  EXPECT_EQ(back.kind, VendorRecordValue::kCreating);
  EXPECT_EQ(back.since_us, 42);
  v.kind = VendorRecordValue::kId;
  v.id = "17";
  ASSERT_TRUE(DecodeVendorRecord(EncodeVendorRecord(v), &back));
  EXPECT_EQ(back.id, "17");
  EXPECT_EQ(EncodeVendorRecord(VendorRecordValue()), "1 released");
  for (const char* bad : {"", "2 id 5", "1 id ", "1 creating x", "1 creating 5x", "released"})
    EXPECT_FALSE(DecodeVendorRecord(bad, &back)) << bad;
}

TEST(VendorRecords, OneCreatorTheOthersWaitThenKnowTheId) {
  MemoryEventLog log;
  std::shared_ptr<CasStore> store = NewLogCasStore(&log, "records");
  int64_t now = 1000;
  auto clock = [&now] { return now; };
  VendorRecords a(store, "t1/halopsa", clock), b(store, "t1/halopsa", clock), other(store, "t2/halopsa", clock);
  std::string id;
  int64_t busy = 0;
  EXPECT_EQ(a.Take("client n:umbrella labs", &id, &busy), VendorRecords::Claim::kMine);
  now += 2'000'000;
  EXPECT_EQ(b.Take("client n:umbrella labs", &id, &busy), VendorRecords::Claim::kBusy);
  EXPECT_EQ(busy, 2'000'000);
  // Another tenant's record of the same company is its own.
  EXPECT_EQ(other.Take("client n:umbrella labs", &id, &busy), VendorRecords::Claim::kMine);
  ASSERT_TRUE(a.Settle("client n:umbrella labs", "12").ok());
  EXPECT_EQ(b.Take("client n:umbrella labs", &id, &busy), VendorRecords::Claim::kKnown);
  EXPECT_EQ(id, "12");
  // The store holds no name: the key is hashed.
  bool plain = false;
  ASSERT_TRUE(log.ScanConsumerState("records", "",
                                    [&](std::string_view k, std::string_view v) {
                                      plain = plain || k.find("umbrella") != std::string_view::npos ||
                                              v.find("umbrella") != std::string_view::npos;
                                      EXPECT_EQ(k.substr(0, 2), "r.");
                                      return true;
                                    })
                  .ok());
  EXPECT_FALSE(plain);
}

TEST(VendorRecords, AReleasedClaimIsFreeAStaleOneIsTakenOverAndNotReleasedByItsDeadHolder) {
  MemoryEventLog log;
  std::shared_ptr<CasStore> store = NewLogCasStore(&log, "records");
  int64_t now = 1000;
  auto clock = [&now] { return now; };
  VendorRecords a(store, "t1/halopsa", clock), b(store, "t1/halopsa", clock);
  std::string id;
  int64_t busy = 0;
  ASSERT_EQ(a.Take("client d:acme.io", &id, &busy), VendorRecords::Claim::kMine);
  a.Release("client d:acme.io");  // the creation failed
  EXPECT_EQ(b.Take("client d:acme.io", &id, &busy), VendorRecords::Claim::kMine);
  // b dies holding it; a waits until it is stale, then takes it over.
  now += VendorRecords::kStaleUs - 1;
  EXPECT_EQ(a.Take("client d:acme.io", &id, &busy), VendorRecords::Claim::kBusy);
  now += 1;
  EXPECT_EQ(a.Take("client d:acme.io", &id, &busy), VendorRecords::Claim::kTakenOver);
  b.Release("client d:acme.io");  // b's late release: a's claim stays
  VendorRecords c(store, "t1/halopsa", clock);
  EXPECT_EQ(c.Take("client d:acme.io", &id, &busy), VendorRecords::Claim::kBusy);
  ASSERT_TRUE(a.Settle("client d:acme.io", "7").ok());
  EXPECT_EQ(c.Take("client d:acme.io", &id, &busy), VendorRecords::Claim::kKnown);
  EXPECT_EQ(id, "7");
}

TEST(VendorRecords, ASettledRecordOutlivesARestartOfTheLog) {
  testing::TempDir dir;
  std::string id;
  int64_t busy = 0;
  {
    RocksDbLogOptions o;
    o.path = dir.path();
    std::unique_ptr<RocksDbEventLog> log;
    ASSERT_TRUE(RocksDbEventLog::Open(o, &log).ok());
    VendorRecords r(NewLogCasStore(log.get(), "vendor_records"), "t1/halopsa");
    ASSERT_EQ(r.Take("client n:globex", &id, &busy), VendorRecords::Claim::kMine);
    ASSERT_TRUE(r.Settle("client n:globex", "31").ok());
  }
  RocksDbLogOptions o;
  o.path = dir.path();
  std::unique_ptr<RocksDbEventLog> log;
  ASSERT_TRUE(RocksDbEventLog::Open(o, &log).ok());
  VendorRecords r(NewLogCasStore(log.get(), "vendor_records"), "t1/halopsa");
  EXPECT_EQ(r.Take("client n:globex", &id, &busy), VendorRecords::Claim::kKnown);
  EXPECT_EQ(id, "31");
}

}  // namespace
}  // namespace dfm
