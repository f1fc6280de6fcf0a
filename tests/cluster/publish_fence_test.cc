// The fence of a partition's log frames (cluster/partition.cc): a publish
// expecting DFM_LOG_<p> to end at a sequence, against a real nats-server,
// is refused when it does not, the first frame (expecting the stream
// empty) included; one with no expectation is not checked.
#include <gtest/gtest.h>

#include "cluster/names.h"
#include "cluster/nats_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/ports.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

using namespace cluster_names;
using testing::Eventually;
using testing::NatsServer;

// Two nodes started the same idle partition: the one that paused before
// its first frame, woken after the other wrote, is fenced, not stored
// beside it (every other node's catch-up would refuse the stream).
TEST(PublishFence, AFirstFrameExpectsTheStreamEmpty) {
  testing::TempDir dir;
  NatsServer server(dir.path(), testing::FreePort());
  std::unique_ptr<NatsClient> nats;
  ASSERT_TRUE(Eventually([&] {
                return NatsClient::Connect({server.url()}, "test", NatsSecurity(), false, &nats);
              }).ok());
  ASSERT_TRUE(nats->EnsureStream(LogStream(0), LogSubject(0), 1, 120).ok());
  PublishAck ack;
  bool fenced = false;
  ASSERT_TRUE(nats->Publish(LogSubject(0), "b's 1-3", "1-3", 0, 2000, &ack, &fenced).ok());
  EXPECT_EQ(ack.seq, 1u);
  Status s = nats->Publish(LogSubject(0), "a's 1-5", "1-5", 0, 2000, &ack, &fenced);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(fenced) << s.ToString();
  uint64_t last = 0;
  ASSERT_TRUE(nats->LastSeq(LogStream(0), &last).ok());
  EXPECT_EQ(last, 1u) << "one first frame";

  EXPECT_TRUE(nats->Publish(LogSubject(0), "b's 4-6", "4-6", 1, 2000, &ack, &fenced).ok());
  EXPECT_FALSE(nats->Publish(LogSubject(0), "a's 4-9", "4-9", 1, 2000, &ack, &fenced).ok());
  EXPECT_TRUE(fenced);
  EXPECT_TRUE(nats->Publish(LogSubject(0), "unchecked", "", NatsClient::kNoExpectation, 2000, &ack,
                            &fenced)
                  .ok());
  EXPECT_EQ(ack.seq, 3u);
}

}  // namespace
}  // namespace dfm
