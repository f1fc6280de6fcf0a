// The sync pauses a cluster's nodes share (app/shared_control.h) over a
// log's CasStore: one sequence, whoever writes, folded in order.
#include <gtest/gtest.h>

#include "app/shared_control.h"
#include "storage/cas_store.h"
#include "storage/memory_event_log.h"
#include "sync/sync_control.h"

namespace dfm {
namespace {

Event Of(const EventDraft& d) {
  Event e;
  e.type = d.type;
  e.payload = d.payload;
  return e;
}

TEST(SharedControl, PausesFromAnyNodeReachEveryNodesControlInOrder) {
  MemoryEventLog log;
  std::shared_ptr<CasStore> store = NewLogCasStore(&log, "control");
  SharedControl a(store), b(store);
  SyncControl on_b;
  int batches = 0;
  const int sub = b.Subscribe([&](const std::vector<Event>& events) {
    ++batches;
    for (const auto& e : events) on_b.Apply(e);
  });
  SyncControlRequest pause;
  pause.scope.tenant = "acme";
  pause.reason = "vendor incident";
  ASSERT_TRUE(a.Publish(Of(SyncPausedDraft(pause, "cli", "r1", 100))).ok());
  ASSERT_TRUE(b.Poll().ok());
  EXPECT_TRUE(on_b.PausedBy("acme", "ghl"));
  EXPECT_FALSE(on_b.PausedBy("globex", "ghl"));

  SyncControlRequest resume;
  resume.scope.tenant = "acme";
  resume.concurrency = 2;
  ASSERT_TRUE(b.Publish(Of(SyncResumedDraft(resume, "key:1", "r2", 200))).ok());  // polls itself
  EXPECT_FALSE(on_b.PausedBy("acme", "ghl"));
  EXPECT_EQ(on_b.Limit("acme", "ghl"), 2);
  EXPECT_EQ(batches, 2);

  // A node that starts later gets the whole sequence at once.
  SharedControl late(store);
  ASSERT_TRUE(late.Poll().ok());
  SyncControl on_late;
  late.Subscribe([&](const std::vector<Event>& events) {
    EXPECT_EQ(events.size(), 2u);
    for (const auto& e : events) on_late.Apply(e);
  });
  EXPECT_FALSE(on_late.PausedBy("acme", "ghl"));
  EXPECT_EQ(on_late.Limit("acme", "ghl"), 2);
  b.Unsubscribe(sub);
  ASSERT_TRUE(a.Publish(Of(SyncPausedDraft(pause, "cli", "r3", 300))).ok());
  ASSERT_TRUE(b.Poll().ok());
  EXPECT_EQ(batches, 2) << "not called once unsubscribed";
}

TEST(SharedControl, EntriesReadBackAndOthersAreRefused) {
  Event e;
  e.type = std::string(kSyncPaused);
  e.payload = R"({"tenant":"*"})";
  Event back;
  ASSERT_TRUE(SharedControl::Decode(SharedControl::Encode(e), &back));
  EXPECT_EQ(back.type, e.type);
  EXPECT_EQ(back.payload, e.payload);
  for (const char* bad : {"", "1 sync.paused", "2 sync.paused {}", "1 contact.created {}", "1 sync.paused "})
    EXPECT_FALSE(SharedControl::Decode(bad, &back)) << bad;
  EXPECT_EQ(SharedControl::EntryKey(7), "c.00000000000000000007");
}

}  // namespace
}  // namespace dfm
