// The fronts' ingest (cluster/ingest_log.h) against a real nats-server:
// webhooks that wait together go to DFM_IN_<p> as one message of several
// drafts, each answered with the id its draft carries, none lost or
// doubled, one message of a partition in flight at a time; a webhook the
// partition's node says its log holds is answered duplicate with that
// event, and a copy within one append with the first's answer, neither
// published (asked of the node's own log when it runs the partition); and
// a webhook is kept in the stream for cluster.ingest_max_age_s only.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "cluster/ingest_log.h"
#include "cluster/names.h"
#include "cluster/nats_client.h"
#include "cluster/wire.h"
#include "storage/memory_event_log.h"
#include "tests/support/nats_server.h"
#include "tests/support/ports.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

using namespace cluster_names;
using testing::Eventually;
using testing::NatsServer;

EventDraft Webhook(const std::string& key) {
  EventDraft d;
  d.tenant = "acme";
  d.stream = "source:verity";
  d.type = "webhook.received";
  d.schema_version = 2;
  d.payload = "{\"n\":\"" + key + "\"}";
  if (!key.empty()) {
    d.idempotency_system = "verity";
    d.idempotency_key = key;
  }
  return d;
}

struct Fixture {
  testing::TempDir dir;
  NatsServer server{dir.path(), testing::FreePort()};
  std::unique_ptr<NatsClient> nats;
  MemoryEventLog local;
  std::unique_ptr<IngestLog> ingest;

  Fixture() {
    EXPECT_TRUE(Eventually([&] {
                  return NatsClient::Connect({server.url()}, "test", NatsSecurity(), false, &nats);
                }).ok());
    EXPECT_TRUE(nats->EnsureStream(InStream(0), InSubject(0), 1, 600).ok());
    ingest = MakeIngestLog(nats.get(), &local, 1);
  }
  ~Fixture() {
    if (ingest) ingest->Close();
  }

  // Every draft in DFM_IN_0, and how many messages held them.
  std::vector<EventDraft> Stream(uint64_t* messages) {
    uint64_t last = 0;
    EXPECT_TRUE(nats->LastSeq(InStream(0), &last).ok());
    *messages = last;
    std::vector<EventDraft> out;
    for (uint64_t seq = 1; seq <= last; ++seq) {
      std::string data;
      std::vector<TakenDraft> in;
      EXPECT_TRUE(nats->GetMsg(InStream(0), seq, &data).ok());
      EXPECT_TRUE(DecodeDrafts(data, &in).ok()) << seq;
      for (auto& t : in) out.push_back(std::move(t.draft));
    }
    return out;
  }
};

TEST(IngestLog, WebhooksThatWaitTogetherGoInOneMessageEachOnce) {
  Fixture f;
  constexpr int kWebhooks = 600;
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0;
  std::map<std::string, EventId> ids;  // payload -> the id answered
  for (int i = 0; i < kWebhooks; ++i) {
    // Every fifth without a provider id.
    EventDraft d = Webhook(i % 5 == 0 ? "" : "m-" + std::to_string(i));
    d.payload = "{\"i\":" + std::to_string(i) + "}";
    const std::string payload = d.payload;
    f.ingest->AppendAsync({std::move(d)}, [&, payload](const Status& s, const std::vector<AppendOutcome>& o) {
      std::lock_guard<std::mutex> lk(mu);
      EXPECT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(o.size(), 1u);
      if (!o.empty()) {
        EXPECT_FALSE(o[0].duplicate);
        ids[payload] = o[0].id;
      }
      ++answered;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(60), [&] { return answered == kWebhooks; }));
  }
  EXPECT_EQ(f.ingest->published(), static_cast<uint64_t>(kWebhooks));
  uint64_t messages = 0;
  std::vector<EventDraft> stored = f.Stream(&messages);
  ASSERT_EQ(stored.size(), static_cast<size_t>(kWebhooks)) << "each once";
  EXPECT_LT(messages, static_cast<uint64_t>(kWebhooks) / 4) << "they waited together: batched";
  EXPECT_EQ(f.ingest->messages(), messages);
  std::set<std::string> payloads;
  for (const auto& d : stored) {
    EXPECT_TRUE(payloads.insert(d.payload).second) << d.payload;
    EXPECT_EQ(ids[d.payload], d.id) << "the answer's id is the one stored";
  }
}

// Senders that each send again once answered (as HTTP clients do): while
// one batch of the partition is in flight, the next waits and takes
// everything that came meanwhile, so a batch holds about half of them, not
// a sender thread's share.
TEST(IngestLog, WebhooksComingWhileTheirPartitionPublishesGoInItsNextBatch) {
  Fixture f;
  constexpr int kSenders = 32, kEach = 20;
  std::vector<std::thread> senders;
  std::atomic<int> failed{0};
  for (int c = 0; c < kSenders; ++c) {
    senders.emplace_back([&, c] {
      for (int i = 0; i < kEach; ++i) {
        auto answer = std::make_shared<std::promise<Status>>();
        std::future<Status> answered = answer->get_future();
        f.ingest->AppendAsync(
            {Webhook("c" + std::to_string(c) + "-" + std::to_string(i))},
            [answer](const Status& s, const std::vector<AppendOutcome>&) { answer->set_value(s); });
        if (!answered.get().ok()) ++failed;
      }
    });
  }
  for (auto& t : senders) t.join();
  EXPECT_EQ(failed.load(), 0);
  uint64_t messages = 0;
  ASSERT_EQ(f.Stream(&messages).size(), static_cast<size_t>(kSenders * kEach)) << "each once";
  EXPECT_LE(messages * 8, static_cast<uint64_t>(kSenders * kEach))
      << "a batch at a time: " << messages << " messages for " << kSenders * kEach << " webhooks";
}

TEST(IngestLog, TwoPartitionsWebhooksInterleavedEachBatchWithItsOwn) {
  Fixture f;
  f.ingest->Close();
  ASSERT_TRUE(f.nats->EnsureStream(InStream(1), InSubject(1), 1, 600).ok());
  f.ingest = MakeIngestLog(f.nats.get(), &f.local, 2);
  // A tenant of each partition.
  std::string tenant[2];
  for (int i = 0; tenant[0].empty() || tenant[1].empty(); ++i) {
    const std::string t = "t" + std::to_string(i);
    tenant[PartitionOf(t, 2)] = t;
  }
  constexpr int kWebhooks = 800;
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0;
  for (int i = 0; i < kWebhooks; ++i) {
    EventDraft d = Webhook("m-" + std::to_string(i));
    d.tenant = tenant[i % 2];
    f.ingest->AppendAsync({std::move(d)}, [&](const Status& s, const std::vector<AppendOutcome>&) {
      std::lock_guard<std::mutex> lk(mu);
      EXPECT_TRUE(s.ok()) << s.ToString();
      ++answered;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(60), [&] { return answered == kWebhooks; }));
  }
  for (uint32_t p = 0; p < 2; ++p) {
    uint64_t last = 0;
    ASSERT_TRUE(f.nats->LastSeq(InStream(p), &last).ok());
    std::set<std::string> keys;
    for (uint64_t seq = 1; seq <= last; ++seq) {
      std::string data;
      std::vector<TakenDraft> in;
      ASSERT_TRUE(f.nats->GetMsg(InStream(p), seq, &data).ok());
      ASSERT_TRUE(DecodeDrafts(data, &in).ok());
      for (const auto& t : in) {
        EXPECT_EQ(t.draft.tenant, tenant[p]) << "a batch holds one partition's webhooks";
        EXPECT_TRUE(keys.insert(t.draft.idempotency_key).second) << "each once";
      }
    }
    EXPECT_EQ(keys.size(), static_cast<size_t>(kWebhooks / 2)) << p;
    EXPECT_LT(last, static_cast<uint64_t>(kWebhooks / 2) / 4) << "interleaved, still batched";
  }
}

TEST(IngestLog, AWebhookItsPartitionHoldsIsADuplicateUnpublished) {
  Fixture f;
  // The partition's node, as ReadRouter::Serve answers: "m-held" is event 7.
  const EventId held = EventId::FromBytes("0123456789abcdef");
  std::unique_ptr<NatsClient::Listener> node;
  ASSERT_TRUE(f.nats->Listen(SeenSubject(0), [&](std::string ask, NatsClient::Reply reply) {
    SeenAsk a;
    ASSERT_TRUE(DecodeSeenAsk(ask, &a).ok());
    std::vector<Seen> answer(a.keys.size());
    for (size_t i = 0; i < a.keys.size(); ++i)
      if (a.keys[i].key == "m-held") answer[i] = {7, held};
    reply(EncodeSeen(answer));
  }, &node).ok());
  std::vector<AppendOutcome> o;
  ASSERT_TRUE(f.ingest->Append({Webhook("m-held"), Webhook("m-new")}, &o).ok());
  ASSERT_EQ(o.size(), 2u);
  EXPECT_TRUE(o[0].duplicate);
  EXPECT_EQ(o[0].seq, 7u);
  EXPECT_EQ(o[0].id, held);
  EXPECT_FALSE(o[1].duplicate);
  // The same webhook twice in one append: the second is the first's duplicate.
  std::vector<AppendOutcome> twice;
  ASSERT_TRUE(f.ingest->Append({Webhook("m-twice"), Webhook("m-twice")}, &twice).ok());
  ASSERT_EQ(twice.size(), 2u);
  EXPECT_FALSE(twice[0].duplicate);
  EXPECT_TRUE(twice[1].duplicate);
  EXPECT_EQ(twice[1].id, twice[0].id);
  uint64_t messages = 0;
  std::vector<EventDraft> stored = f.Stream(&messages);
  ASSERT_EQ(stored.size(), 2u) << "only the new ones published, each once";
  EXPECT_EQ(stored[0].idempotency_key, "m-new");
  EXPECT_EQ(stored[0].id, o[1].id);
  EXPECT_EQ(stored[1].idempotency_key, "m-twice");
  EXPECT_EQ(stored[1].id, twice[0].id);
}

// A webhook whose draft would not fit, as its log record, in a frame of
// DFM_LOG_<p> is refused for good (413 at the front), not taken into
// DFM_IN_<p>, where its partition would fail to append it at every start
// and take nothing after it; one a little smaller goes.
TEST(IngestLog, AWebhookTooLargeForTheLogIsRefusedNotPublished) {
  Fixture f;
  EventDraft big = Webhook("m-big");
  big.payload = "{\"b\":\"" + std::string(kMaxDraft, 'x') + "\"}";
  std::vector<AppendOutcome> o;
  Status s = f.ingest->Append({big}, &o);
  EXPECT_EQ(s.code(), Status::Code::kTooLarge) << s.ToString();
  EventDraft fits = Webhook("m-fits");
  fits.payload = "{\"b\":\"" + std::string(kMaxDraft - 4096, 'x') + "\"}";
  ASSERT_TRUE(f.ingest->Append({fits}, &o).ok());
  uint64_t messages = 0;
  std::vector<EventDraft> stored = f.Stream(&messages);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].idempotency_key, "m-fits");
}

TEST(IngestLog, ANodeRunningThePartitionAnswersTheSeenAskFromItsOwnLog) {
  Fixture f;
  f.ingest->Close();
  // ReadRouter::AnswerSeenHere for a node that runs partition 0: "m-held" is
  // event 9. Nothing listens on dfm.seen.0: an ask over NATS would find no
  // node and publish.
  const EventId held = EventId::FromBytes("fedcba9876543210");
  bool serves = true;
  int asked_here = 0;
  f.ingest = MakeIngestLog(f.nats.get(), &f.local, 1, nullptr,
                           [&](uint32_t p, const SeenAsk& ask, std::vector<Seen>* answer) {
                             if (!serves) return false;
                             EXPECT_EQ(p, 0u);
                             ++asked_here;
                             answer->assign(ask.keys.size(), Seen{});
                             for (size_t i = 0; i < ask.keys.size(); ++i)
                               if (ask.keys[i].key == "m-held") (*answer)[i] = {9, held};
                             return true;
                           });
  std::vector<AppendOutcome> o;
  ASSERT_TRUE(f.ingest->Append({Webhook("m-held"), Webhook("m-new")}, &o).ok());
  ASSERT_EQ(o.size(), 2u);
  EXPECT_TRUE(o[0].duplicate);
  EXPECT_EQ(o[0].seq, 9u);
  EXPECT_EQ(o[0].id, held);
  EXPECT_FALSE(o[1].duplicate);
  EXPECT_EQ(asked_here, 1);
  // The partition moved away: asked over NATS (no node: published).
  serves = false;
  ASSERT_TRUE(f.ingest->Append({Webhook("m-held")}, &o).ok());
  EXPECT_FALSE(o[0].duplicate);
  EXPECT_EQ(asked_here, 1);
  uint64_t messages = 0;
  std::vector<EventDraft> stored = f.Stream(&messages);
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].idempotency_key, "m-new");
  EXPECT_EQ(stored[1].idempotency_key, "m-held");
}

// cluster.ingest_max_age_s: a stream made before (kept for ever) takes
// the age, and a webhook is gone from it once that passed.
TEST(IngestLog, TheStreamKeepsAWebhookForItsAgeOnly) {
  Fixture f;
  ASSERT_TRUE(f.nats->UpdateStreamLimits(InStream(0), 1, 2).ok());
  ASSERT_TRUE(f.nats->UpdateStreamLimits(InStream(0), 1, 2).ok()) << "already so";
  AppendOutcome o;
  ASSERT_TRUE(f.ingest->Append(Webhook("m-old"), &o).ok());
  std::string data;
  ASSERT_TRUE(f.nats->GetMsg(InStream(0), o.seq, &data).ok());
  Status gone;
  for (int i = 0; i < 100 && gone.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    gone = f.nats->GetMsg(InStream(0), o.seq, &data);
  }
  EXPECT_TRUE(gone.IsNotFound()) << gone.ToString();
  uint64_t first = 0, last = 0;
  ASSERT_TRUE(f.nats->Bounds(InStream(0), &first, &last).ok());
  EXPECT_EQ(first, o.seq + 1);
  EXPECT_EQ(last, o.seq);
}

}  // namespace
}  // namespace dfm
