// A pull consumer's end (cluster/nats_client.h) against a real nats-server:
// a partition stops (or resubscribes) a moment after a Fetch whose pull
// the server still answers (its late messages, its 408 at expiry). libnats
// 3.4.1's reader looks a subscription up and then locks it without a
// reference (nats.c #637, fixed in 3.6.1): freed meanwhile, the node
// crashes. The consumer itself stays on the server for the next owner.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "cluster/names.h"
#include "cluster/nats_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/ports.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

using namespace cluster_names;
using testing::Connect;
using testing::Eventually;
using testing::NatsServer;

// Consumers ended right after their Fetch, while large messages keep
// coming: the process lives (under AddressSanitizer it crashed within a
// few hundred rounds before the fix).
TEST(PullConsumerEnd, EndingRightAfterAFetchWhileMessagesComeIsSafe) {
  testing::TempDir dir;
  NatsServer server(dir.path(), testing::FreePort());
  auto reader = Connect(server);
  auto writer = Connect(server);
  ASSERT_TRUE(reader && writer);
  ASSERT_TRUE(reader->EnsureStream(InStream(0), InSubject(0), 1, 1, 2).ok());  // kept 2 s
  reader->set_retired_for(std::chrono::milliseconds(200));  // freed on the way, not only at close
  const std::string body(256 * 1024, 'x');
  std::atomic<bool> writing{true};
  std::thread publisher([&] {
    PublishAck ack;
    while (writing.load())
      (void)writer->Publish(InSubject(0), body, "", NatsClient::kNoExpectation, 2000, &ack);
  });
  struct Joined {  // an ASSERT's return stops and joins it
    std::atomic<bool>& writing;
    std::thread& t;
    ~Joined() {
      writing.store(false);
      t.join();
    }
  } joined{writing, publisher};
  uint64_t fetched = 0;
  for (int i = 0; i < 600; ++i) {
    uint64_t last = 0;
    ASSERT_TRUE(reader->LastSeq(InStream(0), &last).ok());
    std::unique_ptr<NatsClient::PullConsumer> c;
    const std::string name = "churn-" + std::to_string(i);
    ASSERT_TRUE(reader->Subscribe(InStream(0), InSubject(0), name, 30, last + 1, &c).ok());
    std::vector<PulledMsg> got;
    ASSERT_TRUE(c->Fetch(64, 1 + i % 5, &got).ok());
    fetched += got.size();
    c.reset();  // as a partition stops: its pull may still be answered
    ASSERT_TRUE(reader->DeleteConsumer(InStream(0), name).ok());
  }
  EXPECT_GT(fetched, 0u) << "the rounds fetched while messages came";
  EXPECT_LT(reader->retired(), 600u) << "ended subscriptions are freed as they fall due";
}

// Ending the reader does not delete the durable consumer: the next owner
// of the partition starts from its ack floor.
TEST(PullConsumerEnd, TheConsumerStaysWithItsAckFloor) {
  testing::TempDir dir;
  NatsServer server(dir.path(), testing::FreePort());
  auto nats = Connect(server);
  ASSERT_TRUE(nats);
  ASSERT_TRUE(nats->EnsureStream(InStream(0), InSubject(0), 1, 120).ok());
  PublishAck ack;
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(nats->Publish(InSubject(0), "m", "", NatsClient::kNoExpectation, 2000, &ack).ok());
  std::unique_ptr<NatsClient::PullConsumer> c;
  ASSERT_TRUE(nats->Subscribe(InStream(0), InSubject(0), "kept", 30, 1, &c).ok());
  std::vector<PulledMsg> got;
  ASSERT_TRUE(c->Fetch(2, 2000, &got).ok());
  ASSERT_EQ(got.size(), 2u);
  got[1].Ack();
  got.clear();
  c.reset();
  std::vector<NatsClient::ConsumerState> consumers;
  ASSERT_TRUE(Eventually([&] {  // the ack is sent, not awaited
                Status s = nats->Consumers(InStream(0), &consumers);
                if (s.ok() && (consumers.size() != 1 || consumers[0].ack_floor != 2))
                  s = Status::Unavailable("not acked yet");
                return s;
              })
                  .ok())
      << "the consumer went with its reader";
  EXPECT_EQ(consumers[0].name, "kept");
  EXPECT_EQ(consumers[0].pending, 1u);
}

}  // namespace
}  // namespace dfm
