// NatsClient::ReadRange (cluster/nats_client.h) against a real
// nats-server: a range of a stream, in order and each message once, in
// requests of a batch; the first refusal of the taker ends it; the
// consumer it read through does not stay on the server.
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include "cluster/names.h"
#include "cluster/nats_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/ports.h"
#include "tests/support/temp_dir.h"
#include "util/logging.h"

namespace dfm {
namespace {

using namespace cluster_names;
using testing::Connect;
using testing::NatsServer;

class ReadRangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<NatsServer>(dir_.path(), testing::FreePort());
    nats_ = Connect(*server_);
    ASSERT_TRUE(nats_);
    ASSERT_TRUE(nats_->EnsureStream(LogStream(0), LogSubject(0), 1, 120).ok());
    for (int i = 1; i <= 700; ++i) {
      PublishAck ack;
      ASSERT_TRUE(nats_
                      ->Publish(LogSubject(0), "frame " + std::to_string(i), "",
                                NatsClient::kNoExpectation, 5000, &ack)
                      .ok());
    }
  }
  testing::TempDir dir_;
  std::unique_ptr<NatsServer> server_;
  std::unique_ptr<NatsClient> nats_;
};

TEST_F(ReadRangeTest, HandsEveryMessageOfTheRangeInOrderOnce) {
  std::vector<uint64_t> seqs;
  Status s = nats_->ReadRange(LogStream(0), LogSubject(0), 3, 650, 256,
                              [&](uint64_t seq, std::string_view data) {
                                EXPECT_EQ(data, "frame " + std::to_string(seq));
                                seqs.push_back(seq);
                                return Status::OK();
                              });
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(seqs.size(), 648u);
  for (size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], 3 + i);
  // The ephemeral consumer goes with the read.
  std::vector<NatsClient::ConsumerState> left;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(nats_->Consumers(LogStream(0), &left).ok());
    if (left.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(left.empty()) << left.size() << " consumers left, e.g. " << left.front().name;
}

TEST_F(ReadRangeTest, TheFirstRefusalEndsTheRead) {
  uint64_t last_taken = 0;
  Status s = nats_->ReadRange(LogStream(0), LogSubject(0), 1, 700, 64,
                              [&](uint64_t seq, std::string_view) {
                                if (seq == 100) return Status::Unavailable("stopping");
                                last_taken = seq;
                                return Status::OK();
                              });
  EXPECT_EQ(s.ToString(), Status::Unavailable("stopping").ToString());
  EXPECT_EQ(last_taken, 99u);
  // An empty range (first past last) takes nothing.
  EXPECT_TRUE(
      nats_
          ->ReadRange(LogStream(0), LogSubject(0), 701, 700, 64,
                      [](uint64_t, std::string_view) { return Status::Unavailable("called"); })
          .ok());
}

// Messages the consumer does not hand out in their turn (here those of
// another subject of the stream, the last among them) are read one by one,
// and so is all of the range when no consumer can be made (a subject the
// stream does not hold): the range has no gap either way. The second is
// logged, as it slows a catch-up ~8x.
TEST(ReadRange, MessagesTheConsumerSkipsAreReadAlone) {
  testing::TempDir dir;
  NatsServer server(dir.path(), testing::FreePort());
  std::unique_ptr<NatsClient> nats = Connect(server);
  ASSERT_TRUE(nats);
  ASSERT_TRUE(nats->EnsureStream("MIXED", "mixed.*", 1, 120).ok());
  for (int i = 1; i <= 42; ++i) {
    PublishAck ack;
    const std::string subject = i % 3 == 0 ? "mixed.b" : "mixed.a";
    ASSERT_TRUE(
        nats->Publish(subject, std::to_string(i), "", NatsClient::kNoExpectation, 5000, &ack).ok());
  }
  // What the "cluster" logger says meanwhile (at warn or below whatever
  // SPDLOG_LEVEL says), given back as it was however the test ends.
  auto said = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(8);
  struct Listening {
    std::shared_ptr<spdlog::logger> logger = Logger("cluster");
    std::shared_ptr<spdlog::sinks::sink> sink;
    spdlog::level::level_enum level = logger->level();
    explicit Listening(std::shared_ptr<spdlog::sinks::sink> s) : sink(std::move(s)) {
      logger->sinks().push_back(sink);
      logger->set_level(std::min(level, spdlog::level::warn));
    }
    ~Listening() {
      auto& sinks = logger->sinks();
      sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
      logger->set_level(level);
    }
  } listening(said);
  for (const char* subject : {"mixed.a", "other.a"}) {
    const size_t lines = said->last_formatted().size();
    std::vector<uint64_t> seqs;
    Status s =
        nats->ReadRange("MIXED", subject, 1, 42, 8, [&](uint64_t seq, std::string_view data) {
          EXPECT_EQ(data, std::to_string(seq));
          seqs.push_back(seq);
          return Status::OK();
        });
    ASSERT_TRUE(s.ok()) << subject << ": " << s.ToString();
    ASSERT_EQ(seqs.size(), 42u) << subject;
    for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1) << subject;
    // Only the fall back for the whole range is said (a warning): skipped
    // messages read alone are the consumer's normal way.
    const std::vector<std::string> now = said->last_formatted();
    if (std::string(subject) == "mixed.a") {
      EXPECT_EQ(now.size(), lines) << "nothing said of messages read alone in passing";
    } else {
      ASSERT_EQ(now.size(), lines + 1);
      EXPECT_NE(now.back().find("event=read_range_one_by_one stream=MIXED step=consumer"),
                std::string::npos)
          << now.back();
      EXPECT_NE(now.back().find("frames=42"), std::string::npos) << now.back();
    }
  }
}

}  // namespace
}  // namespace dfm
