// Cluster mode's pure parts (cluster/wire.h, cluster/leases.h,
// cluster/publish_retry.h, cluster/node_metrics.h, cluster/replica_sequence.h)
// and the event log's replica hooks
// (RocksDbLogOptions::replicate, ImportRecords).
// NATS itself is exercised by tests/integration/cluster_test.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "cluster/draft_seal.h"
#include "cluster/leases.h"
#include "cluster/names.h"
#include "cluster/node_metrics.h"
#include "cluster/publish_retry.h"
#include "cluster/replica_sequence.h"
#include "cluster/wire.h"
#include "events/codec.h"
#include "storage/rocksdb_event_log.h"
#include "tests/support/faulty_fs.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

using testing::TempDir;

EventDraft Draft(std::string payload, std::string idem = "") {
  EventDraft d;
  d.tenant = "acme";
  d.stream = "source:verity";
  d.type = "webhook.received";
  d.schema_version = 2;
  d.payload = std::move(payload);
  if (!idem.empty()) {
    d.idempotency_system = "verity";
    d.idempotency_key = std::move(idem);
  }
  return d;
}

std::unique_ptr<RocksDbEventLog> Open(const std::string& path,
                                      decltype(RocksDbLogOptions::replicate) replicate = {}) {
  RocksDbLogOptions o;
  o.path = path;
  o.replicate = std::move(replicate);
  std::unique_ptr<RocksDbEventLog> log;
  Status s = RocksDbEventLog::Open(o, &log);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return log;
}

// The ingest consumers' names: each subscription's own, read back with its
// lease revision (the older builds' "in" as 0), anything else refused.
TEST(ClusterNames, IngestConsumerNamesReadBackTheirRevisionAndOthersAreRefused) {
  using namespace cluster_names;
  uint64_t rev = 9, n = 9;
  ASSERT_TRUE(ParseInConsumer(InConsumerName(1234, 7), &rev, &n));
  EXPECT_EQ(rev, 1234u);
  EXPECT_EQ(n, 7u);
  ASSERT_TRUE(ParseInConsumer("in", &rev, &n));
  EXPECT_EQ(rev + n, 0u);
  for (const char* other : {"in-", "in-1", "in-1-", "in--2", "in-1-2x", "in-a-2", "out-1-2",
                            "in-99999999999999999999999-1", "inx"})
    EXPECT_FALSE(ParseInConsumer(other, &rev, &n)) << other;
  EXPECT_TRUE(IsInConsumer("in-3-1"));
  EXPECT_FALSE(IsInConsumer("reader"));
}

TEST(ClusterWire, PartitionOfIsStableAndSpreads) {
  // Fixed values: every node and tool must agree for the cluster's life.
  EXPECT_EQ(PartitionOf("default", 6), 0u);
  EXPECT_EQ(PartitionOf("default", 6), PartitionOf(std::string("defa") + "ult", 6));
  EXPECT_EQ(PartitionOf("anything", 1), 0u);
  std::map<uint32_t, int> seen;
  for (int i = 0; i < 600; ++i) seen[PartitionOf("tenant-" + std::to_string(i), 6)]++;
  ASSERT_EQ(seen.size(), 6u);
  for (const auto& [p, n] : seen) EXPECT_GT(n, 60) << p;  // none starved
}

TEST(ClusterWire, DraftRoundTripsAndEveryCutIsRefused) {
  EventDraft d = Draft(std::string("body\0with nul", 13), "m-1");
  d.source_time_us = -5;  // before 1970 still round-trips
  d.causation_id = EventId::FromBytes(std::string(16, '\x07'));
  d.id = EventId::FromBytes(std::string(16, '\x09'));
  const std::string frame = EncodeDraft(d);
  EventDraft back;
  ASSERT_TRUE(DecodeDraft(frame, &back).ok());
  EXPECT_EQ(back.tenant, "acme");
  EXPECT_EQ(back.stream, d.stream);
  EXPECT_EQ(back.type, d.type);
  EXPECT_EQ(back.schema_version, 2);
  EXPECT_EQ(back.source_time_us, std::optional<int64_t>(-5));
  EXPECT_EQ(back.causation_id, d.causation_id);
  EXPECT_TRUE(back.correlation_id.IsZero());
  EXPECT_EQ(back.id, d.id);
  EXPECT_EQ(back.payload, d.payload);
  EXPECT_EQ(back.idempotency_system, "verity");
  EXPECT_EQ(back.idempotency_key, "m-1");
  for (size_t cut = 0; cut < frame.size(); ++cut)
    EXPECT_FALSE(DecodeDraft(frame.substr(0, cut), &back).ok()) << cut;
  EXPECT_FALSE(DecodeDraft(frame + "x", &back).ok());
  std::string v3 = frame;
  v3[0] = 3;
  EXPECT_FALSE(DecodeDraft(v3, &back).ok());
  // Version 2: the same fields, its payload sealed at the front.
  bool sealed = false;
  ASSERT_TRUE(DecodeDraft(EncodeDraft(d, /*sealed=*/true), &back, &sealed).ok());
  EXPECT_TRUE(sealed);
  EXPECT_EQ(back.payload, d.payload);
  ASSERT_TRUE(DecodeDraft(frame, &back, &sealed).ok());
  EXPECT_FALSE(sealed);
}

// Version 3: several webhooks in one message, each its own draft frame,
// sealed or not; a message of version 1 or 2 reads as one.
TEST(ClusterWire, DraftBatchHoldsEachDraftAndEveryCutIsRefused) {
  EventDraft a = Draft("one", "m-1"), b = Draft("two");
  b.tenant = "beta";
  const std::string frame = EncodeDraftBatch({EncodeDraft(a), EncodeDraft(b, /*sealed=*/true)});
  std::vector<TakenDraft> got;
  ASSERT_TRUE(DecodeDrafts(frame, &got).ok());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].draft.payload, "one");
  EXPECT_FALSE(got[0].sealed);
  EXPECT_EQ(got[0].draft.idempotency_key, "m-1");
  EXPECT_EQ(got[1].draft.tenant, "beta");
  EXPECT_TRUE(got[1].sealed);
  for (size_t cut = 0; cut < frame.size(); ++cut) EXPECT_FALSE(DecodeDrafts(frame.substr(0, cut), &got).ok()) << cut;
  EXPECT_FALSE(DecodeDrafts(frame + "x", &got).ok());
  std::string one = "\x03";
  one += '\x01';  // a batch of one is not a batch
  one += static_cast<char>(EncodeDraft(a).size());
  one += EncodeDraft(a);
  EXPECT_FALSE(DecodeDrafts(one, &got).ok());
  ASSERT_TRUE(DecodeDrafts(EncodeDraft(a, true), &got).ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].sealed);
}

TEST(ClusterDraftSeal, TheFrontSealsWhatTheLogWouldAndTheRunnerOpensItOnce) {
  MemoryKeyStore keys;
  EventDraft d = Draft("{\"phone\":\"+12055550142\"}", "m-1");
  d.id = EventId::FromBytes(std::string(16, '\x09'));
  ASSERT_TRUE(SealsDraft(d));
  EventDraft admin = d;
  admin.stream = "admin";
  admin.type = "admin.action";
  EXPECT_FALSE(SealsDraft(admin));
  const std::string plain = d.payload;
  ASSERT_TRUE(SealDraft(&keys, &d).ok());
  EXPECT_EQ(d.payload.find("+12055550142"), std::string::npos);
  // Through the stream and back.
  EventDraft taken;
  bool sealed = false;
  ASSERT_TRUE(DecodeDraft(EncodeDraft(d, true), &taken, &sealed).ok());
  uint64_t key_no = 0;
  EventDraft opened = taken;
  ASSERT_EQ(OpenDraft(keys, &opened, &key_no), DraftOpen::kOpened);
  EXPECT_EQ(opened.payload, plain);
  EXPECT_NE(key_no, 0u);
  // Bound to its draft: another event id does not open it.
  EventDraft moved = taken;
  moved.id = EventId::FromBytes(std::string(16, '\x0a'));
  EXPECT_EQ(OpenDraft(keys, &moved, &key_no), DraftOpen::kDamaged);
  EventDraft cut = taken;
  cut.payload.resize(4);
  EXPECT_EQ(OpenDraft(keys, &cut, &key_no), DraftOpen::kDamaged);
  // Appended, its key destroyed: a redelivery reads as appended.
  ASSERT_TRUE(keys.Destroy({key_no}).ok());
  EventDraft again = taken;
  EXPECT_EQ(OpenDraft(keys, &again, &key_no), DraftOpen::kDestroyed);
  // A key the store does not have and never will (another store).
  MemoryKeyStore other;
  EventDraft elsewhere = taken;
  EXPECT_EQ(OpenDraft(other, &elsewhere, &key_no), DraftOpen::kMissing);
  // A store that cannot be read now: asked again, not given up on.
  MemoryKeyStore unread;
  uint64_t fresh = 0;
  std::string k;
  ASSERT_TRUE(unread.NewKey(&fresh, &k).ok());
  EventDraft later = d;
  later.payload = plain;
  ASSERT_TRUE(SealDraft(&unread, &later).ok());
  unread.FailGets(true);
  EXPECT_EQ(OpenDraft(unread, &later, &key_no), DraftOpen::kUnread);
  unread.FailGets(false);
  EXPECT_EQ(OpenDraft(unread, &later, &key_no), DraftOpen::kOpened);
}

// A message naming a version this build does not know is kept for a node
// that reads it (the partition stops), not skipped as damaged: its own
// version byte, or any of its batch's drafts'.
TEST(ClusterWire, AMessageOfANewerBuildIsToldFromADamagedOne) {
  EventDraft d;
  d.tenant = "default";
  d.stream = "webhook:verity";
  d.type = "webhook.received";
  const std::string one = EncodeDraft(d);
  EXPECT_FALSE(WrittenByNewerBuild(one));
  EXPECT_FALSE(WrittenByNewerBuild(EncodeDraftBatch({one, EncodeDraft(d, true)})));
  EXPECT_FALSE(
      WrittenByNewerBuild(std::string("\x01\x03"
                                      "ab")));  // damaged, not newer
  EXPECT_FALSE(WrittenByNewerBuild(""));
  EXPECT_TRUE(WrittenByNewerBuild(std::string("\x04") + one.substr(1)));
  std::string newer = one;
  newer[0] = '\x05';
  const std::string batch = EncodeDraftBatch({one, newer});
  std::vector<TakenDraft> taken;
  EXPECT_FALSE(DecodeDrafts(batch, &taken).ok());
  EXPECT_TRUE(WrittenByNewerBuild(batch)) << "a batch with a draft of a newer version";
  std::string cut = batch.substr(0, batch.size() - 1);
  EXPECT_FALSE(WrittenByNewerBuild(cut)) << "a damaged batch is not taken for a newer one";
  std::string wild = one;
  wild[0] = static_cast<char>(0xc8);
  EXPECT_FALSE(WrittenByNewerBuild(EncodeDraftBatch({one, wild}))) << "no version that high";
  EXPECT_FALSE(WrittenByNewerBuild(wild)) << "a damaged message's first byte";
}

TEST(ClusterWire, ChunkRoundTripsAndEveryCutIsRefused) {
  LogChunk c;
  c.writer = "node-b";
  c.lease_rev = 4242;
  c.records = {{"rec-1", "idem-1"}, {"rec-2", ""}};
  const std::string frame = EncodeChunk(c);
  LogChunk back;
  ASSERT_TRUE(DecodeChunk(frame, &back).ok());
  EXPECT_EQ(back.writer, "node-b");
  EXPECT_EQ(back.lease_rev, 4242u);
  ASSERT_EQ(back.records.size(), 2u);
  EXPECT_EQ(back.records[1].record, "rec-2");
  EXPECT_EQ(back.records[0].idempotency_key, "idem-1");
  for (size_t cut = 0; cut < frame.size(); ++cut)
    EXPECT_FALSE(DecodeChunk(frame.substr(0, cut), &back).ok()) << cut;
  EXPECT_FALSE(DecodeChunk(frame + "x", &back).ok());
}

std::vector<LeaseView> Leases(std::initializer_list<const char*> owners) {
  std::vector<LeaseView> v;
  uint64_t rev = 1;
  for (const char* o : owners) v.push_back({o, *o ? rev++ : 0});
  return v;
}

TEST(ClusterLeases, NodesStartingTogetherClaimTheirShareOfDifferentOnes) {
  std::vector<std::string> live = {"a", "b", "c"};
  auto free = Leases({"", "", "", "", "", "", "", "", "", "", "", ""});
  std::set<uint32_t> wanted_by_a, wanted_by_b;
  LeasePlan a = PlanLeases("a", live, free), b = PlanLeases("b", live, free);
  EXPECT_EQ(a.claim.size(), 4u);  // ceil(12 / 3)
  EXPECT_EQ(b.claim.size(), 4u);
  EXPECT_TRUE(a.renew.empty());
  EXPECT_TRUE(a.release.empty());
  wanted_by_a.insert(a.claim.begin(), a.claim.end());
  wanted_by_b.insert(b.claim.begin(), b.claim.end());
  std::vector<uint32_t> both;
  std::set_intersection(wanted_by_a.begin(), wanted_by_a.end(), wanted_by_b.begin(),
                        wanted_by_b.end(), std::back_inserter(both));
  EXPECT_LT(both.size(), 4u);  // mostly different ones (CAS settles the rest)
}

TEST(ClusterLeases, OnItsFirstLookANodeClaimsNothingAndRenewsItsOwn) {
  // b started a moment after a: a's first look sees a alone. Claiming
  // then, a would take all six and hand three over a release a tick.
  auto free = Leases({"", "", "", "", "", ""});
  EXPECT_TRUE(PlanLeases("a", {"a"}, free, /*first_look=*/true).claim.empty());
  // At its second look both are live: each claims its share.
  EXPECT_EQ(PlanLeases("a", {"a", "b"}, free).claim.size(), 3u);
  // A restarted node's own leases are renewed on its first look.
  auto mine = Leases({"a", "", "b", "", "", ""});
  LeasePlan a = PlanLeases("a", {"a", "b"}, mine, /*first_look=*/true);
  EXPECT_EQ(a.renew, (std::vector<uint32_t>{0}));
  EXPECT_TRUE(a.claim.empty());
}

TEST(ClusterLeases, RenewsItsOwnAndNeverTakesAHeldOne) {
  auto leases = Leases({"a", "b", "b", "c", "", "a"});
  LeasePlan a = PlanLeases("a", {"a", "b", "c"}, leases);
  EXPECT_EQ(a.renew, (std::vector<uint32_t>{0, 5}));
  EXPECT_EQ(a.claim, (std::vector<uint32_t>{}));  // share 2, holds 2
  LeasePlan c = PlanLeases("c", {"a", "b", "c"}, leases);
  EXPECT_EQ(c.claim, (std::vector<uint32_t>{4}));
  // A dead node's leases stand until they lapse: nobody takes them early.
  LeasePlan after = PlanLeases("a", {"a", "c"}, leases);
  for (uint32_t p : after.claim) EXPECT_EQ(p, 4u);
}

TEST(ClusterLeases, AfterANodeDiesTheOthersTakeItsLapsedPartitions) {
  // b died; its leases lapsed. a and c now each hold up to 3 of 6.
  auto leases = Leases({"a", "", "", "c", "a", "c"});
  LeasePlan a = PlanLeases("a", {"a", "c"}, leases);
  EXPECT_EQ(a.claim.size(), 1u);
  LeasePlan c = PlanLeases("c", {"a", "c"}, leases);
  EXPECT_EQ(c.claim.size(), 1u);
}

TEST(ClusterLeases, ANodeThatJoinsGetsWorkOneReleaseATick) {
  auto leases = Leases({"a", "a", "a", "b", "b", "b"});
  LeasePlan a = PlanLeases("a", {"a", "b", "c"}, leases);  // c joined
  EXPECT_EQ(a.release.size(), 1u);
  // With everyone at their share, nobody releases.
  auto even = Leases({"a", "a", "b", "b", "c", "c"});
  EXPECT_TRUE(PlanLeases("a", {"a", "b", "c"}, even).release.empty());
  // Above its share but nobody short (a partition is free instead): keep.
  auto loose = Leases({"a", "a", "a", "b", "b", ""});
  EXPECT_TRUE(PlanLeases("a", {"a", "b"}, loose).release.empty());
}

// A simulated clock for PublishWithRetry: an attempt takes its whole wait
// when it times out, nothing when answered.
struct RetryClock {
  int64_t now = 0;
  std::vector<int64_t> waits;
  std::function<int64_t()> Now() {
    return [this] { return now; };
  }
  std::function<void(int64_t)> Sleep() {
    return [this](int64_t ms) { now += ms; };
  }
};

TEST(ClusterPublishRetry, AnAttemptWithNoAnswerIsRepeatedUntilTheStreamAnswers) {
  RetryClock clock;
  int calls = 0;
  auto attempt = [&](int64_t wait_ms, bool* final) {
    clock.waits.push_back(wait_ms);
    *final = false;
    if (++calls < 3) {
      clock.now += wait_ms;  // timed out
      return Status::Unavailable("publish: timeout");
    }
    return Status::OK();  // e.g. a duplicate: the first attempt had landed
  };
  int attempts = 0;
  Status s = PublishWithRetry(attempt, PublishRetryPolicy{6000, 2000, 250}, clock.Now(),
                              clock.Sleep(), &attempts);
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(attempts, 3);
  // 2000 + 250 + 2000 + 250 = 4500 spent: the third waits what is left.
  EXPECT_EQ(clock.waits, (std::vector<int64_t>{2000, 2000, 1500}));
}

TEST(ClusterPublishRetry, AStreamsRefusalIsFinalAndTheBudgetBoundsTheWait) {
  RetryClock clock;
  int attempts = 0;
  auto refused = [&](int64_t, bool* final) {
    *final = true;
    return Status::Unavailable("publish: maximum payload exceeded (JetStream error 10054)");
  };
  EXPECT_FALSE(PublishWithRetry(refused, PublishRetryPolicy{}, clock.Now(), clock.Sleep(), &attempts).ok());
  EXPECT_EQ(attempts, 1);

  // No leader for ever (answered at once each time): attempts every pause
  // until the budget is spent, never past it.
  auto no_leader = [&](int64_t, bool* final) {
    *final = false;
    return Status::Unavailable("publish: no responders available for request");
  };
  Status s = PublishWithRetry(no_leader, PublishRetryPolicy{6000, 2000, 250}, clock.Now(),
                              clock.Sleep(), &attempts);
  EXPECT_EQ(s.code(), Status::Code::kUnavailable);
  EXPECT_EQ(attempts, 24);  // at 0, 250, ..., 5800 ms
  EXPECT_LE(clock.now, 6000);

  // Attempts that time out: 2 s, 2 s, then the 1.5 s left.
  RetryClock slow;
  auto timeout = [&](int64_t wait_ms, bool* final) {
    *final = false;
    slow.waits.push_back(wait_ms);
    slow.now += wait_ms;
    return Status::Unavailable("publish: timeout");
  };
  EXPECT_FALSE(PublishWithRetry(timeout, PublishRetryPolicy{6000, 2000, 250}, slow.Now(),
                                slow.Sleep(), &attempts)
                   .ok());
  EXPECT_EQ(slow.waits, (std::vector<int64_t>{2000, 2000, 1500}));
  EXPECT_EQ(slow.now, 6000);
}

TEST(ClusterReplica, ARecordIsWrittenOnlyAfterTheReplicaTookIt) {
  TempDir dir;
  std::vector<ReplicaRecord> replica;
  bool refuse = false;
  auto log = Open(dir.Sub("a"), [&](const std::vector<PlannedRecord>& rs, uint64_t* pos) {
    if (refuse) return Status::Unavailable("fenced");
    for (const auto& r : rs) replica.push_back({r.record, r.idempotency_key});
    *pos = replica.size() * 10;
    return Status::OK();
  });
  AppendOutcome o;
  ASSERT_TRUE(log->Append(Draft("one", "m-1"), &o).ok());
  ASSERT_TRUE(log->Append(Draft("two"), &o).ok());
  EXPECT_EQ(replica.size(), 2u);
  uint64_t pos = 0;
  ASSERT_TRUE(log->ReadCheckpoint(kReplicaCheckpoint, &pos).ok());
  EXPECT_EQ(pos, 20u);  // written with the records
  // Refused: nothing is written, the caller hears why, the log goes on.
  refuse = true;
  Status s = log->Append(Draft("three"), &o);
  EXPECT_EQ(s.code(), Status::Code::kUnavailable);
  EXPECT_EQ(log->LastSequence(), 2u);
  refuse = false;
  ASSERT_TRUE(log->Append(Draft("three"), &o).ok());
  EXPECT_EQ(o.seq, 3u);  // the refused plan left no hole
  EXPECT_EQ(replica.size(), 3u);
  // A duplicate is not sent to the replica again.
  ASSERT_TRUE(log->Append(Draft("one again", "m-1"), &o).ok());
  EXPECT_TRUE(o.duplicate);
  EXPECT_EQ(replica.size(), 3u);
  log->Close();
}

// The replica took a group commit and the local write failed (a full
// disk): the log gives the numbers back and plans them again for its next
// commit, with other records. The partition's hook (ReplicaSequence)
// refuses that commit: the replica never gets a number twice (every other
// node's catch-up would refuse the stream), and the partition starts again
// from the replica, which holds the first records under those numbers.
TEST(ClusterReplica, NumbersTheReplicaTookAreNeverHandedOnAgain) {
  TempDir dir;
  auto fs = std::make_shared<testing::FaultyFs>();
  std::vector<uint64_t> handed;  // each record's number, as the replica took it
  ReplicaSequence sequence;
  RocksDbLogOptions o;
  o.path = dir.Sub("a");
  o.file_system = fs;
  o.replicate = [&](const std::vector<PlannedRecord>& rs, uint64_t* pos) {
    if (Status s = sequence.CheckFirst(rs.front().seq); !s.ok()) return s;
    for (const auto& r : rs) handed.push_back(r.seq);
    sequence.Took(rs.back().seq);
    *pos = handed.size();
    return Status::OK();
  };
  std::unique_ptr<RocksDbEventLog> log;
  ASSERT_TRUE(RocksDbEventLog::Open(o, &log).ok());
  AppendOutcome out;
  ASSERT_TRUE(log->Append(Draft("one"), &out).ok());
  fs->FailWrites(true);
  EXPECT_FALSE(log->Append(Draft("two"), &out).ok()) << "the replica took it; the disk did not";
  fs->FailWrites(false);
  EXPECT_EQ(handed, (std::vector<uint64_t>{1, 2}));
  // Once the log has recovered from the failure, its next commit plans 2
  // again: refused, never handed on.
  Status s;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    s = log->Append(Draft("three"), &out);
  } while (s.message().find("cannot accept writes") != std::string::npos &&
           std::chrono::steady_clock::now() < until &&
           (std::this_thread::sleep_for(std::chrono::milliseconds(20)), true));
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("start again from the replica"), std::string::npos) << s.ToString();
  EXPECT_EQ(handed, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(log->LastSequence(), 1u);
  log->Close();

  EXPECT_TRUE(sequence.CheckFirst(3).ok()) << "past what the replica holds: handed on";
}

// The largest draft a front takes (kMaxDraft), as its partition's log
// record, fits one DFM_LOG_<p> frame under NATS's 1 MiB max_payload with
// room for the frame's headers.
TEST(ClusterReplica, TheLargestWebhookAFrontTakesFitsOneLogFrame) {
  TempDir dir;
  EventDraft d = Draft("", "a-provider-id-of-some-length-0123456789");
  d.payload = "x";
  d.payload.append(cluster_names::kMaxDraft - EncodeDraft(d).size(), 'x');
  d.payload.resize(d.payload.size() -
                   (EncodeDraft(d).size() - cluster_names::kMaxDraft));  // varints
  ASSERT_EQ(EncodeDraft(d).size(), cluster_names::kMaxDraft);
  LogChunk chunk;
  chunk.writer = "node-with-a-long-name-0123456789";
  chunk.lease_rev = ~uint64_t{0};
  auto log = Open(dir.Sub("a"), [&](const std::vector<PlannedRecord>& rs, uint64_t* pos) {
    for (const auto& r : rs) chunk.records.push_back({r.record, r.idempotency_key});
    *pos = 1;
    return Status::OK();
  });
  AppendOutcome o;
  ASSERT_TRUE(log->Append(d, &o).ok());
  ASSERT_EQ(chunk.records.size(), 1u);
  EXPECT_LT(EncodeChunk(chunk).size() + 1024, size_t{1} << 20) << "a frame with 1 KiB of headers";
  log->Close();
}

TEST(ClusterReplica, ImportedRecordsMakeTheSameLog) {
  TempDir dir;
  std::vector<ReplicaRecord> replica;
  auto writer = Open(dir.Sub("w"), [&](const std::vector<PlannedRecord>& rs, uint64_t* pos) {
    for (const auto& r : rs) replica.push_back({r.record, r.idempotency_key});
    *pos = replica.size();
    return Status::OK();
  });
  EventDraft preset = Draft("preset id");
  preset.id = EventId::FromBytes(std::string(16, '\x05'));
  AppendOutcome o;
  ASSERT_TRUE(writer->Append(preset, &o).ok());
  EXPECT_EQ(o.id, preset.id);  // the id given where the webhook was taken
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(writer->Append(Draft(std::to_string(i), "k" + std::to_string(i)), &o).ok());
  const ChainReport w = writer->VerifyChain();

  auto follower = Open(dir.Sub("f"));
  ASSERT_TRUE(follower->ImportRecords({replica.begin(), replica.begin() + 2}, 2).ok());
  ASSERT_TRUE(follower->ImportRecords(replica, 6).ok());  // the first two again: skipped
  const ChainReport f = follower->VerifyChain();
  EXPECT_TRUE(f.ok);
  EXPECT_EQ(f.count, 6u);
  EXPECT_EQ(f.head_hash, w.head_hash);
  uint64_t pos = 0, seq = 0;
  ASSERT_TRUE(follower->ReadCheckpoint(kReplicaCheckpoint, &pos).ok());
  EXPECT_EQ(pos, 6u);
  // Its indexes are whole: the idempotency key and the id are found.
  ASSERT_TRUE(follower->LookupIdempotency("acme", "verity", "k3", &seq).ok());
  EXPECT_EQ(seq, 5u);
  ASSERT_TRUE(follower->LookupEventId(preset.id, &seq).ok());
  EXPECT_EQ(seq, 1u);
  // It carries on as the writer: the next append chains to the imported head.
  ASSERT_TRUE(follower->Append(Draft("k3 again", "k3"), &o).ok());
  EXPECT_TRUE(o.duplicate);
  ASSERT_TRUE(follower->Append(Draft("after"), &o).ok());
  EXPECT_EQ(o.seq, 7u);
  EXPECT_TRUE(follower->VerifyChain().ok);

  // A gap, or a record that does not chain, is refused whole.
  auto other = Open(dir.Sub("o"));
  EXPECT_EQ(other->ImportRecords({replica[1]}, 1).code(), Status::Code::kCorruption);
  std::vector<ReplicaRecord> forged = {replica[0], replica[1]};
  Event e;
  ASSERT_TRUE(DecodeRecord(forged[1].record, &e).ok());
  e.prev_hash[0] ^= 1;
  forged[1].record = EncodeRecord(e);
  EXPECT_EQ(other->ImportRecords(forged, 2).code(), Status::Code::kCorruption);
  EXPECT_EQ(other->LastSequence(), 0u);
  writer->Close();
  follower->Close();
  other->Close();
}

TEST(ClusterWire, SeenAskAndAnswerRoundTripAndCutsAreRefused) {
  SeenAsk ask;
  ask.keys = {{"acme", "ghl", "m-1"}, {"beta", "twilio", "SM1"}};
  const std::string a = EncodeSeenAsk(ask);
  SeenAsk back;
  ASSERT_TRUE(DecodeSeenAsk(a, &back).ok());
  EXPECT_EQ(back.keys, ask.keys);
  std::vector<Seen> answer(2);
  answer[1].seq = 42;
  answer[1].id = EventId::FromBytes("0123456789abcdef");
  const std::string b = EncodeSeen(answer);
  std::vector<Seen> got;
  ASSERT_TRUE(DecodeSeen(b, &got).ok());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].seq, 0u);
  EXPECT_EQ(got[1].seq, 42u);
  EXPECT_EQ(got[1].id.AsBytes(), "0123456789abcdef");
  for (size_t cut = 0; cut < a.size(); ++cut) EXPECT_FALSE(DecodeSeenAsk(a.substr(0, cut), &back).ok()) << cut;
  for (size_t cut = 0; cut < b.size(); ++cut) EXPECT_FALSE(DecodeSeen(b.substr(0, cut), &got).ok()) << cut;
  EXPECT_FALSE(DecodeSeen(b + "x", &got).ok());
  EXPECT_FALSE(DecodeSeenAsk("\x02" + a.substr(1), &back).ok()) << "another version";
}

TEST(NodeMetrics, FrameRoundTripsAndRefusesOthers) {
  std::string node, text;
  ASSERT_TRUE(DecodeNodeMetrics(EncodeNodeMetrics("node-1", "a 1\nb 2\n"), &node, &text));
  EXPECT_EQ(node, "node-1");
  EXPECT_EQ(text, "a 1\nb 2\n");
  EXPECT_FALSE(DecodeNodeMetrics("2 node\ntext", &node, &text)) << "another version";
  EXPECT_FALSE(DecodeNodeMetrics("1 \ntext", &node, &text)) << "no node";
  EXPECT_FALSE(DecodeNodeMetrics("1 node", &node, &text)) << "no line feed";
}

// Every fresh node's samples, labelled with it, each family once; a node
// silent past `stale` shows only in the age gauge, and is forgotten later.
TEST(NodeMetrics, TheClusterViewMergesFreshNodesAndShowsTheSilentOnes) {
  constexpr int64_t kS = 1000000;
  ClusterMetricsView view(10 * kS, 3600 * kS);
  const std::string family = "# HELP dfm_pushes_total Pushes.\n# TYPE dfm_pushes_total counter\n";
  view.Put("b", family + "dfm_pushes_total{partition=\"1\"} 5\n", 100 * kS);
  view.Put("a", family + "dfm_pushes_total{partition=\"0\"} 3\n", 104 * kS);
  view.Put("a", "stale", 103 * kS);  // an older send overtaken: kept out
  EXPECT_EQ(view.Text(105 * kS),
            family +
                "dfm_pushes_total{node=\"a\",partition=\"0\"} 3\n"
                "dfm_pushes_total{node=\"b\",partition=\"1\"} 5\n"
                "# HELP dfm_cluster_node_metrics_age_seconds Seconds since each node last sent its metrics; "
                "a node silent for longer than a few seconds is left out of this scrape.\n"
                "# TYPE dfm_cluster_node_metrics_age_seconds gauge\n"
                "dfm_cluster_node_metrics_age_seconds{node=\"a\"} 1\n"
                "dfm_cluster_node_metrics_age_seconds{node=\"b\"} 5\n");
  const std::string later = view.Text(112 * kS);  // b silent for 12 s
  EXPECT_EQ(later.find("node=\"b\",partition"), std::string::npos) << later;
  EXPECT_NE(later.find("dfm_pushes_total{node=\"a\",partition=\"0\"} 3"), std::string::npos);
  EXPECT_NE(later.find("dfm_cluster_node_metrics_age_seconds{node=\"b\"} 12"), std::string::npos);
  const std::string much_later = view.Text(3702 * kS);
  EXPECT_EQ(much_later.find("\"b\""), std::string::npos) << "forgotten after an hour";
  EXPECT_NE(much_later.find("{node=\"a\"} 3598"), std::string::npos) << much_later;
}

}  // namespace
}  // namespace dfm
