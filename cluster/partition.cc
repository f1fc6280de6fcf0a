#include "cluster/partition.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "cluster/names.h"
#include "cluster/partition_internal.h"
#include "cluster/wire.h"
#include "util/logging.h"

namespace dfm {

namespace cluster_partition {

using namespace cluster_names;

namespace {
// Frames of DFM_LOG_<p> a catch-up asks for at a time (NatsClient::ReadRange).
constexpr int kCatchUpFrames = 256;
}  // namespace

void NatsPartition::StartAsync(const PartitionWorkFactory& factory) {
  starter_ = std::thread([this, factory] {
    Status s = Start(factory);
    if (abandoned_) {
      // Stop came first: the records imported stay (whole batches, with
      // the replica checkpoint), the rest is read by the next start.
      Logger("cluster")->info(
          "event=partition_start_abandoned partition={} reason=\"stopping\" step=\"{}\"", p_,
          abandon_cause_);
    } else if (s.ok()) {
      // A reload while it started (Reload found no work yet) reaches the
      // work now; after this, Reload reaches it itself.
      std::lock_guard<std::mutex> lk(reload_mu_);
      if (reloaded_) work_->Reload(*reloaded_);
      started_.store(true);
    } else {
      Logger("cluster")->error("event=partition_start_failed partition={} error=\"{}\"", p_,
                               s.ToString());
      broken_.store(true);
    }
  });
}

Status NatsPartition::Start(const PartitionWorkFactory& factory) {
  auto logger = Logger("cluster");
  RocksDbLogOptions opts;
  opts.path = PartitionDir(config_->data_dir(), p_);
  opts.min_free_bytes = config_->min_free_bytes();
  opts.replicate = [this](const std::vector<PlannedRecord>& r, uint64_t* pos) {
    return Replicate(r, pos);
  };
  if (open_keys_) {
    Status ks = open_keys_(p_, &keys_);
    if (!ks.ok()) return ks;
    opts.keys = keys_;
  }
  std::error_code ec;
  std::filesystem::create_directories(opts.path, ec);
  Status s = RocksDbEventLog::Open(opts, &log_);
  if (!s.ok()) return s;
  const auto started = std::chrono::steady_clock::now();
  s = CatchUp();
  if (!s.ok()) return s;
  if (stopping_.load()) return Stopping();
  const auto caught = std::chrono::steady_clock::now();
  const uint32_t n = static_cast<uint32_t>(config_->cluster().partitions);
  const uint32_t p = p_;
  const uint32_t part = p_;
  scrubber_ = std::make_unique<ErasureScrubber>(log_.get(), [part](uint64_t seq, const Status& st) {
    Logger("cluster")->warn("event=erasure_not_compacted partition={} seq={} error=\"{}\"", part,
                            seq, st.ToString());
  });
  ErasureScrubber* scrubber = scrubber_.get();
  ServedLog served{log_.get(), keys_.get(),
                   [scrubber](uint64_t seq) { scrubber->ScrubAfter(seq); }};
  served.stopping = &stopping_;
  s = factory(
      p_, std::move(served), [p, n](const std::string& t) { return PartitionOf(t, n) == p; },
      &work_);
  if (!s.ok())
    return stopping_.load() ? Stopping(s) : s;  // the work gave up on the stop, or failed
  if (stopping_.load()) return Stopping();      // the work made is stopped by Stop
  s = OpenConsumer(0);
  if (!s.ok()) return s;
  running_ = true;
  ingest_ = std::thread([this] { IngestLoop(); });
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  logger->info(
      "event=partition_started partition={} log_seq={} replica={} catch_up_ms={} start_ms={}", p_,
      log_->LastSequence(), position_.load(), ms(caught - started),
      ms(std::chrono::steady_clock::now() - started));
  return Status::OK();
}

void NatsPartition::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true);  // a start under way gives up at its next step
  if (starter_.joinable()) starter_.join();
  started_.store(false);
  running_ = false;
  if (ingest_.joinable()) ingest_.join();
  consumer_.reset();
  if (scrubber_) scrubber_->Stop();
  if (work_) work_->Stop();
  work_.reset();
  if (log_) log_->Close();
  log_.reset();
}

Status NatsPartition::Replicate(const std::vector<PlannedRecord>& records, uint64_t* position) {
  if (broken_.load()) return Status::Unavailable("partition is being restarted from its replica");
  if (Status s = handed_.CheckFirst(records.front().seq); !s.ok()) {
    broken_.store(true);
    Logger("cluster")->error("event=partition_replica_ahead partition={} error=\"{}\"", p_,
                             s.ToString());
    return s;
  }
  size_t i = 0;
  while (i < records.size()) {
    LogChunk c;
    c.writer = node_;
    c.lease_rev = lease_rev_.load();
    size_t bytes = 0;
    const uint64_t first = records[i].seq;
    while (i < records.size() &&
           (c.records.empty() || bytes + records[i].record.size() < kMaxFrame)) {
      bytes += records[i].record.size() + records[i].idempotency_key.size() + 8;
      c.records.push_back({records[i].record, records[i].idempotency_key});
      ++i;
    }
    const uint64_t last = records[i - 1].seq;
    PublishAck ack;
    bool fenced = false;
    Status s = nats_->Publish(LogSubject(p_), EncodeChunk(c),
                              std::to_string(first) + "-" + std::to_string(last), position_.load(),
                              kPublishTimeoutMs, &ack, &fenced);
    if (s.ok() && ack.duplicate) {
      fenced = true;
      s = Status::Unavailable("another writer appended records " + std::to_string(first) + "..");
    }
    if (!s.ok()) {
      broken_.store(true);
      Logger("cluster")->error("event=partition_{} partition={} error=\"{}\"",
                               fenced ? "fenced" : "replica_failed", p_, s.ToString());
      return Status::Unavailable("partition " + std::to_string(p_) + ": " + s.ToString());
    }
    position_.store(ack.seq);
    handed_.Took(last);
  }
  *position = position_.load();
  return Status::OK();
}

Status NatsPartition::Stopping(const Status& cause) {
  abandoned_ = true;
  if (!cause.ok()) abandon_cause_ = cause.ToString();
  return Status::Unavailable("the partition is stopping");
}

Status NatsPartition::CatchUp() {
  uint64_t pos = 0;
  Status s = log_->ReadCheckpoint(kReplicaCheckpoint, &pos);
  if (!s.ok()) return s;
  uint64_t last = 0;
  s = nats_->LastSeq(LogStream(p_), &last);
  if (!s.ok()) return s;
  std::vector<ReplicaRecord> batch;
  s = nats_->ReadRange(LogStream(p_), LogSubject(p_), pos + 1, last, kCatchUpFrames,
                       [&](uint64_t seq, std::string_view frame) {
                         if (stopping_.load()) return Stopping();
                         LogChunk c;
                         Status st = DecodeChunk(frame, &c);
                         if (!st.ok())
                           return Status::Corruption("DFM_LOG_" + std::to_string(p_) + " #" +
                                                     std::to_string(seq) + ": " + st.ToString());
                         for (auto& r : c.records) batch.push_back(std::move(r));
                         if (batch.size() < 4096 && seq != last) return Status::OK();
                         st = log_->ImportRecords(batch, seq);
                         batch.clear();
                         return st;
                       });
  if (!s.ok()) return s;
  position_.store(std::max(pos, last));
  return Status::OK();
}

Status NatsPartition::OpenConsumer(uint64_t from) {
  std::vector<NatsClient::ConsumerState> old;
  Status s = nats_->Consumers(InStream(p_), &old);
  if (!s.ok()) return s;
  uint64_t floor = 0;
  for (const auto& c : old)
    if (IsInConsumer(c.name)) floor = std::max(floor, c.ack_floor);
  const uint64_t start = from != 0 ? from : floor + 1;
  const std::string name = InConsumerName(lease_rev_.load(), ++subscriptions_);
  consumer_.reset();
  s = nats_->Subscribe(InStream(p_), InSubject(p_), name, kAckWaitS, start, &consumer_);
  if (!s.ok()) return s;
  consumer_name_ = name;
  next_in_ = start;
  const uint64_t own_rev = lease_rev_.load();
  for (const auto& c : old) {
    uint64_t rev = 0, n = 0;
    if (!ParseInConsumer(c.name, &rev, &n) || c.name == name || rev > own_rev) continue;
    Status d = nats_->DeleteConsumer(InStream(p_), c.name);
    if (!d.ok())
      Logger("cluster")->warn(
          "event=ingest_consumer_not_deleted partition={} consumer={} "
          "error=\"{}\"",
          p_, c.name, d.ToString());
  }
  return Status::OK();
}

bool NatsPartition::Resubscribe(const char* why) {
  Logger("cluster")->warn("event=ingest_consumer_renewed partition={} from={} reason=\"{}\"", p_,
                          next_in_, why);
  Status s = OpenConsumer(next_in_);
  if (s.ok()) return true;
  Logger("cluster")->error("event=ingest_consumer_lost partition={} error=\"{}\"", p_,
                           s.ToString());
  broken_.store(true);
  return false;
}

}  // namespace cluster_partition

using cluster_partition::NatsPartition;

std::string PartitionDir(const std::string& data_dir, uint32_t p) {
  char dir[32];
  snprintf(dir, sizeof dir, "p%03u", p);
  return (std::filesystem::path(data_dir) / "partitions" / dir).string();
}

void DropIdleCopy(const std::string& dir) {
  RocksDbLogOptions opts;
  opts.path = dir;
  std::unique_ptr<RocksDbEventLog> log;
  Status s = RocksDbEventLog::Open(opts, &log);
  if (s.ok()) s = log->DropDerived({std::string(kReplicaCheckpoint)});
  if (log) log->Close();
  if (!s.ok()) Logger("cluster")->warn("event=partition_state_kept dir={} error=\"{}\"", dir, s.ToString());
}

void DropIdleCopies(const std::string& data_dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(data_dir) / "partitions", ec))
    if (entry.is_directory()) DropIdleCopy(entry.path().string());
}

std::unique_ptr<Partition> MakePartition(uint32_t p, const Config* config, NatsClient* nats,
                                         std::string node, uint64_t lease_rev,
                                         PartitionKeysOpener keys, IngestState* ingest) {
  return std::make_unique<NatsPartition>(p, config, nats, std::move(node), lease_rev,
                                         std::move(keys), ingest);
}

}  // namespace dfm
