// A partition's stop while it starts (cluster/partition.cc), against a real
// nats-server: a node told to stop while it reads a taken-over partition's
// replica back gives up between two frames instead of reading the rest and
// starting the work, keeps what it imported, and the next start reads on.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "cluster/names.h"
#include "cluster/nats_client.h"
#include "cluster/partition.h"
#include "cluster/wire.h"
#include "config/config.h"
#include "storage/rocksdb_event_log.h"
#include "tests/support/nats_server.h"
#include "tests/support/ports.h"
#include "tests/support/temp_dir.h"

namespace dfm {
namespace {

using namespace cluster_names;
using testing::NatsServer;

class IdleWork : public PartitionWork {
 public:
  void Reload(const Config&) override {}
  void Stop() override {}
  uint64_t Behind(uint64_t) const override { return 0; }
  void WriteMetrics(uint64_t, MetricsText*) const override {}
  std::string StatusText(uint64_t) const override { return ""; }
};

// `n` records as a single node's log makes them (its replicate hook).
std::vector<ReplicaRecord> MakeRecords(const std::string& dir, int n) {
  std::vector<ReplicaRecord> made;
  RocksDbLogOptions o;
  o.path = dir;
  o.replicate = [&made](const std::vector<PlannedRecord>& records, uint64_t* position) {
    for (const auto& r : records) made.push_back({r.record, r.idempotency_key});
    *position = made.size();
    return Status::OK();
  };
  std::unique_ptr<RocksDbEventLog> log;
  Status s = RocksDbEventLog::Open(o, &log);
  if (!s.ok()) {
    ADD_FAILURE() << s.ToString();
    return made;
  }
  for (int at = 0; at < n; at += 500) {
    std::vector<EventDraft> drafts;
    for (int i = at; i < std::min(n, at + 500); ++i) {
      EventDraft d;
      d.tenant = "default";
      d.stream = "source:test";
      d.type = "test.event";
      d.payload = "event " + std::to_string(i);
      drafts.push_back(std::move(d));
    }
    std::vector<AppendOutcome> outcomes;
    EXPECT_TRUE(log->Append(std::move(drafts), &outcomes).ok());
  }
  log->Close();
  return made;
}

uint64_t LocalLastSequence(const std::string& dir) {
  RocksDbLogOptions o;
  o.path = dir;
  std::unique_ptr<RocksDbEventLog> log;
  Status s = RocksDbEventLog::Open(o, &log);
  if (!s.ok()) {
    ADD_FAILURE() << s.ToString();
    return 0;
  }
  const uint64_t last = log->LastSequence();
  log->Close();
  return last;
}

TEST(PartitionStop, AStopWhileItReadsTheReplicaBackEndsTheStartAndTheNextReadsOn) {
  testing::TempDir dir;
  NatsServer server(dir.path() + "/nats", testing::FreePort());
  std::unique_ptr<NatsClient> nats = testing::Connect(server);
  ASSERT_TRUE(nats);
  ASSERT_TRUE(nats->EnsureStream(LogStream(0), LogSubject(0), 1, 120).ok());
  ASSERT_TRUE(nats->EnsureStream(InStream(0), InSubject(0), 1, 120).ok());
  // One record a frame.
  constexpr int kRecords = 1500;
  const std::vector<ReplicaRecord> records = MakeRecords(dir.path() + "/source", kRecords);
  ASSERT_EQ(records.size(), static_cast<size_t>(kRecords));
  for (size_t i = 0; i < records.size(); ++i) {
    LogChunk c;
    c.writer = "node1";
    c.lease_rev = 1;
    c.records.push_back(records[i]);
    PublishAck ack;
    const std::string id = std::to_string(i + 1) + "-" + std::to_string(i + 1);
    ASSERT_TRUE(nats->Publish(LogSubject(0), EncodeChunk(c), id, i, 5000, &ack).ok()) << i;
  }

  std::vector<ConfigProblem> problems;
  const Config config = Config::Load("",
                                     {{"DFM_STORAGE_DATA_DIR", dir.path() + "/node0"},
                                      {Config::EnvName("cluster.partitions"), "1"}},
                                     &problems);
  for (const auto& p : problems) ASSERT_FALSE(p.error) << p.message;
  std::atomic<int> works{0};
  PartitionWorkFactory factory = [&works](uint32_t, ServedLog,
                                          std::function<bool(const std::string&)>,
                                          std::unique_ptr<PartitionWork>* out) {
    works.fetch_add(1);
    *out = std::make_unique<IdleWork>();
    return Status::OK();
  };
  IngestState ingest;
  auto first = MakePartition(0, &config, nats.get(), "node0", 2, nullptr, &ingest);
  first->StartAsync(factory);
  first->Stop();  // told to stop at once: the catch-up gives up at its next frame
  EXPECT_FALSE(first->started());
  EXPECT_FALSE(first->broken()) << "an abandoned start is no failure";
  EXPECT_EQ(works.load(), 0) << "the work started after the stop";
  first.reset();
  const std::string local = PartitionDir(config.data_dir(), 0);
  EXPECT_LT(LocalLastSequence(local), static_cast<uint64_t>(kRecords))
      << "read to the end after the stop";

  auto second = MakePartition(0, &config, nats.get(), "node0", 3, nullptr, &ingest);
  second->StartAsync(factory);
  for (int i = 0; i < 1200 && !second->started() && !second->broken(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(second->started()) << "broken: " << second->broken();
  EXPECT_EQ(second->log_seq(), static_cast<uint64_t>(kRecords));
  EXPECT_EQ(works.load(), 1);
  second->Stop();
}

}  // namespace
}  // namespace dfm
