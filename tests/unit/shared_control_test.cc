// The sync pauses a cluster's nodes share (app/shared_control.h) over a
// log's CasStore: one sequence, whoever writes, folded in order.
#include <gtest/gtest.h>

#include "app/shared_control.h"
#include "storage/cas_store.h"
#include "storage/memory_event_log.h"
#include "sync/sync_control.h"

namespace dfm {
namespace {

// A store whose reads fail while `down` (NATS unreachable).
class DownStore : public CasStore {
 public:
  explicit DownStore(std::shared_ptr<CasStore> inner) : inner_(std::move(inner)) {}
  Status Get(const std::string& k, Entry* e) override { return down ? Down() : inner_->Get(k, e); }
  Status Create(const std::string& k, const std::string& v) override {
    return inner_->Create(k, v);
  }
  Status Update(const std::string& k, const std::string& v, uint64_t rev) override {
    return inner_->Update(k, v, rev);
  }
  Status Keys(std::vector<std::string>* keys) override { return inner_->Keys(keys); }
  bool down = false;

 private:
  static Status Down() { return Status::Unavailable("NATS unreachable"); }
  std::shared_ptr<CasStore> inner_;
};

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

// Each node acks how far it has applied the sequence: a pause is held
// everywhere once every node's ack reaches it.
TEST(SharedControl, EachNodeSaysHowFarItHasApplied) {
  MemoryEventLog log;
  std::shared_ptr<CasStore> store = NewLogCasStore(&log, "control");
  SharedControl a(store), b(store);
  a.SetNode("a");
  b.SetNode("b");
  ASSERT_TRUE(a.Poll().ok());
  ASSERT_TRUE(b.Poll().ok());
  std::vector<std::string> waiting;
  ASSERT_TRUE(a.Waiting({"a", "b"}, 0, &waiting).ok());
  EXPECT_TRUE(waiting.empty()) << "both acked the empty sequence";
  SyncControlRequest pause;
  pause.scope.tenant = "acme";
  uint64_t seq = 0;
  ASSERT_TRUE(a.Publish(Of(SyncPausedDraft(pause, "cli", "r1", 100)), &seq).ok());
  EXPECT_EQ(seq, 1u);
  ASSERT_TRUE(a.Waiting({"a", "b", "c"}, seq, &waiting).ok());
  EXPECT_EQ(waiting, (std::vector<std::string>{"b", "c"})) << "b has not read it; c never acked";
  ASSERT_TRUE(b.Poll().ok());
  ASSERT_TRUE(a.Waiting({"a", "b"}, seq, &waiting).ok());
  EXPECT_TRUE(waiting.empty());
  // The acks unreadable: no node is said to hold it.
  auto down = std::make_shared<DownStore>(store);
  SharedControl c(down);
  down->down = true;
  EXPECT_FALSE(c.Waiting({"a", "b"}, seq, &waiting).ok());
  EXPECT_EQ(waiting, (std::vector<std::string>{"a", "b"}));
  uint64_t n = 0;
  EXPECT_TRUE(SharedControl::DecodeAck(SharedControl::EncodeAck(12), &n));
  EXPECT_EQ(n, 12u);
  for (const char* bad : {"", "1 ", "2 3", "1 x", "1 -1", "1 123456789012345678901"})
    EXPECT_FALSE(SharedControl::DecodeAck(bad, &n)) << bad;
}

}  // namespace
}  // namespace dfm
