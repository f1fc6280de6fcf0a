// Reading sealed events while the key store cannot be read (a failing
// disk, a damaged block): the read fails, to be asked again, and nothing
// goes past the event as if it were unreadable for good: not the log's
// reads, not the projections' catch-up or rebuild, not an erasure.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "app/erase.h"
#include "events/codec.h"
#include "projections/runner.h"
#include "projections/sync_projections.h"
#include "storage/key_store.h"
#include "storage/memory_event_log.h"
#include "storage/rocksdb_event_log.h"
#include "sync/domain_event.h"
#include "tests/support/erasure_drafts.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

constexpr char kPhone[] = "+15551234567";


// A webhook, contact c1 made from it, and c1's STOP; the seq of the STOP.
uint64_t AppendContactAndStop(EventLog* log) {
  AppendOutcome w, c, out;
  EXPECT_TRUE(log->Append(testing::GhlWebhook("{}", "w1"), &w).ok());
  EXPECT_TRUE(log->Append(testing::ContactCreated("c1", kPhone, w), &c).ok());
  EXPECT_TRUE(log->Append(testing::SmsOptOut("c1", kPhone, w, 5), &out).ok());
  return out.seq;
}

// The opt-out registry's row for c1's phone on sms ("" when it has none).
std::string RegistryRow(const EventLog& log) {
  std::string v;
  Status s = log.GetConsumerState(OptOutRegistryProjection::kName,
                                  std::string("o/t/") + kPhone + "/sms", &v);
  return s.ok() ? v : "";
}

// A sealing log in memory holding c1 and its STOP, and the sync's
// projections over it, not folded yet; c1_key: the key of c1's events.
struct FoldFixture {
  std::shared_ptr<MemoryKeyStore> keys = std::make_shared<MemoryKeyStore>();
  MemoryEventLog log;
  SyncProjections projections;
  ProjectionRunner runner{&log, projections.All()};
  uint64_t stop = 0, c1_key = 0;
  FoldFixture() {
    log.SetKeyStore(keys);
    stop = AppendContactAndStop(&log);
    std::vector<Event> got;
    EXPECT_TRUE(log.Read(stop, 1, &got).ok());
    c1_key = got.empty() ? 0 : got[0].key_no;
  }
};

TEST(SealedReadsTest, AKeyNotReadNowFailsTheReadInsteadOfLeavingItSealed) {
  auto keys = std::make_shared<MemoryKeyStore>();
  MemoryEventLog log;
  log.SetKeyStore(keys);
  const uint64_t stop = AppendContactAndStop(&log);
  keys->FailGets(true);
  std::vector<Event> got;
  EXPECT_TRUE(log.Read(stop, 1, &got).IsUnavailable());
  EXPECT_TRUE(log.ReadStream("t", ContactStream("c1"), 0, 10, &got).IsUnavailable());
  std::string raw;
  ASSERT_TRUE(log.ScanRecords(stop, [&](uint64_t, std::string_view r) {
                   raw.assign(r);
                   return false;
                 }).ok());
  Event e;
  ASSERT_TRUE(DecodeRecord(raw, &e).ok());
  EXPECT_TRUE(log.Unseal(&e).IsUnavailable());
  EXPECT_EQ(e.sealing, Event::Sealing::kSealed);
  // What a header says needs no key (ReadUnopened: a router's earlier
  // decision, a cluster's "seen" answer, the tools' time search).
  Event header;
  ASSERT_TRUE(log.ReadUnopened(stop, &header).ok());
  EXPECT_EQ(header.seq, stop);
  EXPECT_EQ(header.type, ev::kOptedOut);
  EXPECT_EQ(header.sealing, Event::Sealing::kSealed);
  EXPECT_TRUE(log.ReadUnopened(stop + 1, &header).IsNotFound());
  keys->FailGets(false);
  got.clear();
  ASSERT_TRUE(log.Read(stop, 1, &got).ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sealing, Event::Sealing::kOpened);
}

// A STOP whose key cannot be read now is not folded as unreadable: the
// catch-up fails, and folds it once the key can be read.
TEST(SealedReadsTest, TheCatchUpStopsAtAnEventWhoseKeyIsNotReadNow) {
  FoldFixture f;
  f.keys->FailGetsOf(f.c1_key);  // the webhook's key still opens
  EXPECT_TRUE(f.runner.CatchUp().IsUnavailable());
  EXPECT_LT(f.runner.checkpoint(), f.stop) << "not folded past the STOP";
  EXPECT_EQ(RegistryRow(f.log), "");
  f.keys->FailGetsOf(0);
  ASSERT_TRUE(f.runner.CatchUp().ok());
  EXPECT_EQ(f.runner.checkpoint(), f.log.LastSequence());
  EXPECT_EQ(RegistryRow(f.log).rfind("out", 0), 0u) << RegistryRow(f.log);
}

// The service's background fold, failing on a key not read now, tries
// again after a growing pause (not every few ms), and folds the STOP once
// the key can be read.
TEST(SealedReadsTest, TheBackgroundFoldBacksOffThenFoldsOnceTheKeyIsRead) {
  FoldFixture f;
  f.keys->FailGetsOf(f.c1_key);
  const uint64_t before = f.keys->Gets();
  ASSERT_TRUE(f.runner.Start().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  // 100 + 200 + 400 ms of pauses: a handful of tries (two keys asked for
  // each), where a retry at every 5 ms read interval would make a hundred.
  EXPECT_LE(f.keys->Gets() - before, 5u * 2);
  EXPECT_FALSE(f.runner.status().ok());
  EXPECT_LT(f.runner.checkpoint(), f.stop);
  f.keys->FailGetsOf(0);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (f.runner.checkpoint() < f.log.LastSequence() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  f.runner.Stop();
  EXPECT_EQ(f.runner.checkpoint(), f.log.LastSequence());
  EXPECT_EQ(RegistryRow(f.log).rfind("out", 0), 0u) << RegistryRow(f.log);
}

TEST(SealedReadsTest, ARebuildFailsAtAnEventWhoseKeyIsNotReadNow) {
  testing::TempDir dir;
  auto keys = std::make_shared<MemoryKeyStore>();
  std::unique_ptr<RocksDbEventLog> log = testing::OpenSealingLog(dir.Sub("log"), keys);
  ASSERT_TRUE(log);
  const uint64_t stop = AppendContactAndStop(log.get());
  std::vector<Event> got;
  ASSERT_TRUE(log->Read(stop, 1, &got).ok());
  ASSERT_EQ(got.size(), 1u);
  keys->FailGetsOf(got[0].key_no);
  EXPECT_TRUE(log->Read(stop, 1, &got).IsUnavailable()) << "Read opens from the record too";
  EXPECT_TRUE(log->ReadStream("t", ContactStream("c1"), 0, 10, &got).IsUnavailable());
  SyncProjections projections;
  ProjectionRunner runner(log.get(), projections.All());
  Status s = runner.Rebuild();
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  EXPECT_EQ(RegistryRow(*log), "");
  keys->FailGetsOf(0);
  ASSERT_TRUE(runner.Rebuild().ok());
  EXPECT_EQ(RegistryRow(*log).rfind("out", 0), 0u) << RegistryRow(*log);
}

TEST(SealedReadsTest, AnErasureThatCannotReadAKeyDestroysNothing) {
  auto keys = std::make_shared<MemoryKeyStore>();
  MemoryEventLog log;
  log.SetKeyStore(keys);
  const uint64_t stop = AppendContactAndStop(&log);
  const uint64_t last = log.LastSequence();
  keys->FailGets(true);
  EraseOutcome out;
  EXPECT_FALSE(EraseContact(&log, keys.get(), {"t", "c1", "request 1", "cli", {}}, &out).ok());
  EXPECT_EQ(log.LastSequence(), last) << "no contact.erased written";
  keys->FailGets(false);
  ASSERT_TRUE(EraseContact(&log, keys.get(), {"t", "c1", "request 1", "cli", {}}, &out).ok());
  std::vector<Event> got;
  ASSERT_TRUE(log.Read(stop, 1, &got).ok());
  EXPECT_EQ(got[0].sealing, Event::Sealing::kErased);
}

}  // namespace
}  // namespace dfm
