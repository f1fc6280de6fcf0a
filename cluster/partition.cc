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

#include "cluster/draft_seal.h"
#include "cluster/names.h"
#include "cluster/replica_sequence.h"
#include "cluster/wire.h"
#include "storage/erasure_scrubber.h"
#include "storage/rocksdb_event_log.h"
#include "storage/shared_key_store.h"
#include "util/logging.h"

namespace dfm {

namespace {
using namespace cluster_names;
// Failed pulls in a row (each followed by 200 ms) before the consumer is
// made again.
constexpr int kPullFailuresBeforeResubscribe = 15;
// Empty pulls in a row (250 ms each) before the consumer is asked whether
// messages wait that it does not hand out.
constexpr int kIdlePullsBeforeCheck = 20;
// Webhooks appended in one group commit at most (a pull of batches can
// hold tens of thousands).
constexpr size_t kAppendDrafts = 2048;
// Frames of DFM_LOG_<p> a catch-up asks for at a time (NatsClient::ReadRange).
constexpr int kCatchUpFrames = 256;

// How long a webhook whose front key the key store's leader answers
// absent is asked again (WaitForKey) before it is given up as lost:
// seconds would cover a leader election; DFM_TEST_KEY_GONE_AFTER_S sets
// it (debug builds).
int64_t KeyGoneAfterUs() {
  int64_t s = 300;
#ifndef NDEBUG
  if (const char* t = std::getenv("DFM_TEST_KEY_GONE_AFTER_S")) s = std::atoi(t);
#endif
  return s * 1000000;
}

// A key block not seen missing for this long is waited for anew; one
// given up (never made, or a store restored from an older copy), after
// an hour.
constexpr int64_t kMissingForgotUs = 60LL * 1000000;
constexpr int64_t kGoneForgotUs = 3600LL * 1000000;

class NatsPartition final : public Partition {
 public:
  NatsPartition(uint32_t p, const Config* config, NatsClient* nats, std::string node,
                uint64_t lease_rev, PartitionKeysOpener open_keys, IngestState* ingest)
      : p_(p),
        config_(config),
        nats_(nats),
        node_(std::move(node)),
        lease_rev_(lease_rev),
        open_keys_(std::move(open_keys)),
        ingest_state_(ingest) {}
  ~NatsPartition() override { Stop(); }

  // Start() on a thread of its own, so that the coordinator goes on
  // renewing leases meanwhile; a failure marks the partition broken (the
  // coordinator stops it and, while it holds the lease, starts it again).
  void StartAsync(const PartitionWorkFactory& factory) override {
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
  bool started() const override { return started_.load(); }

  Status Start(const PartitionWorkFactory& factory) {
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
      Logger("cluster")->warn("event=erasure_not_compacted partition={} seq={} error=\"{}\"", part, seq,
                              st.ToString());
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
    if (stopping_.load()) return Stopping();  // the work made is stopped by Stop
    s = OpenConsumer(0);
    if (!s.ok()) return s;
    running_ = true;
    ingest_ = std::thread([this] { IngestLoop(); });
    auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
    logger->info("event=partition_started partition={} log_seq={} replica={} catch_up_ms={} start_ms={}",
                 p_, log_->LastSequence(), position_.load(), ms(caught - started),
                 ms(std::chrono::steady_clock::now() - started));
    return Status::OK();
  }

  void Stop() override {
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

  bool broken() const override { return broken_.load(); }
  // REQUIRES: started().
  uint64_t log_seq() const override { return log_->LastSequence(); }
  uint64_t sync_behind() const override { return work_->Behind(log_seq()); }
  void WriteMetrics(MetricsText* out) const override {
    log_->WriteMetrics(out);  // as a single node's log's
    work_->WriteMetrics(log_seq(), out);
  }
  std::string StatusText() const override { return work_->StatusText(log_seq()); }
  void set_lease_rev(uint64_t rev) override { lease_rev_.store(rev); }
  // From the coordinator's thread while the starter may be writing work_:
  // the work is reached only once started (see StartAsync).
  void Reload(const Config& c) override {
    std::lock_guard<std::mutex> lk(reload_mu_);
    reloaded_ = &c;
    if (started_.load()) work_->Reload(c);
  }

 private:
  // The log's replicate hook (writer thread): the records go to DFM_LOG_<p>
  // in frames, each expecting the stream to end where this node last saw
  // it. Anything but a clean ack breaks the partition: the coordinator
  // stops it and starts it again from the replica, which is the truth.
  Status Replicate(const std::vector<PlannedRecord>& records, uint64_t* position) {
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
      while (i < records.size() && (c.records.empty() || bytes + records[i].record.size() < kMaxFrame)) {
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

  // Start gives up: Stop has begun (the starter thread only). `cause`:
  // what the step that gave up returned, logged with it.
  Status Stopping(const Status& cause = Status::OK()) {
    abandoned_ = true;
    if (!cause.ok()) abandon_cause_ = cause.ToString();
    return Status::Unavailable("the partition is stopping");
  }

  // Reads what the local log lacks of DFM_LOG_<p>, kCatchUpFrames frames a
  // request, and imports it 4,096 records at a time; gives up between two
  // frames once Stop has begun (what was imported stays, with its
  // checkpoint).
  Status CatchUp() {
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

  // A consumer of a new name (names.h, InConsumerName) that reads DFM_IN_<p>
  // from `from`, or when 0 from after the highest ack floor of the
  // partition's consumers; then the others whose lease revision is not
  // newer than its own (its own earlier subscriptions among them) are
  // deleted (one that will not go is logged and tried again at the next
  // subscription). A stale owner, whose revision is older, never deletes
  // the current owner's.
  Status OpenConsumer(uint64_t from) {
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
        Logger("cluster")->warn("event=ingest_consumer_not_deleted partition={} consumer={} "
                                "error=\"{}\"", p_, c.name, d.ToString());
    }
    return Status::OK();
  }

  // The consumer made again from the next message to append; false (the
  // partition broken) when that fails.
  bool Resubscribe(const char* why) {
    Logger("cluster")->warn("event=ingest_consumer_renewed partition={} from={} reason=\"{}\"", p_, next_in_, why);
    Status s = OpenConsumer(next_in_);
    if (s.ok()) return true;
    Logger("cluster")->error("event=ingest_consumer_lost partition={} error=\"{}\"", p_, s.ToString());
    broken_.store(true);
    return false;
  }

  enum class Taken { kAppend, kSkip, kBroken };
  // Opens a webhook of the message at `seq` of DFM_IN_<p> when the front
  // sealed it (cluster/draft_seal.h; *front_key: the key to destroy once it
  // is appended). Skipped: appended before (its front key destroyed), or
  // never readable (Lost). Broken: its key cannot be read now (started
  // again, it is taken again).
  Taken Take(bool sealed, uint64_t seq, EventDraft* d, uint64_t* front_key) {
    auto logger = Logger("cluster");
    if (!sealed) return Taken::kAppend;
    if (!keys_) {
      logger->error("event=ingest_frame_sealed partition={} stream_seq={} reason=\"sealed by a node with "
                    "cluster.state_key; this node has none\"", p_, seq);
      broken_.store(true);
      return Taken::kBroken;
    }
    DraftOpen opened = OpenDraft(*keys_, d, front_key);
    if (opened == DraftOpen::kMissing) opened = WaitForKey(seq, d, front_key);
    if (!running_.load()) return Taken::kBroken;  // stopping: taken again by whoever runs it next
    switch (opened) {
      case DraftOpen::kOpened:
        ForgetMissingBlock(*front_key);
        return Taken::kAppend;
      case DraftOpen::kDestroyed:
        logger->info("event=ingest_already_appended partition={} stream_seq={}", p_, seq);
        return Taken::kSkip;
      case DraftOpen::kDamaged:
        Lost(seq, "it does not open with its key");
        return Taken::kSkip;
      case DraftOpen::kMissing:
        Lost(seq, "its key is not in the partition's key store");
        return Taken::kSkip;
      case DraftOpen::kUnread:
        break;
    }
    logger->error("event=ingest_key_unread partition={} stream_seq={} key={}", p_, seq, *front_key);
    broken_.store(true);
    return Taken::kBroken;
  }

  // A front key the key store's leader answers absent: a leader just
  // elected may not have applied a block a front made a moment before
  // (a key is made before its webhook is published). Asked again, 1 s and
  // then up to 10 s apart, until KeyGoneAfterUs() of this node's steady
  // clock (no other machine's) after keys of its block began to be missing
  // here (IngestState, kept across the partition's restarts: a block gone
  // costs one wait, not one per webhook, whatever other fronts' keys open
  // meanwhile; a block not seen missing for kMissingForgotUs is a new
  // wait); the partition waits meanwhile. kMissing then; else its answer.
  DraftOpen WaitForKey(uint64_t seq, EventDraft* d, uint64_t* front_key) {
    using Clock = std::chrono::steady_clock;
    const uint64_t block = (*front_key - 1) / SharedKeyStore::kKeysPerBlock;
    int64_t now_us = 0;
    const int64_t since = NoteMissing(block, &now_us);
    const auto until = Clock::time_point(std::chrono::microseconds(since + KeyGoneAfterUs()));
    Logger("cluster")->warn(
        "event=ingest_key_missing partition={} stream_seq={} key={} missing_for_s={} reason=\"its "
        "block "
        "is asked again until it has been missing {} s here\"",
        p_, seq, *front_key, (now_us - since) / 1000000, KeyGoneAfterUs() / 1000000);
    ingest_state_->waiting_key.store(1);
    auto pause = std::chrono::milliseconds(1000);
    DraftOpen o = DraftOpen::kMissing;
    while (running_.load() && o == DraftOpen::kMissing) {
      const auto wake = std::min(until, Clock::now() + pause);
      while (running_.load() && Clock::now() < wake)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!running_.load()) break;
      o = OpenDraft(*keys_, d, front_key);  // asked once more even when the wait is over
      if (o != DraftOpen::kMissing) break;
      NoteMissing(block, &now_us);
      if (Clock::now() >= until) break;
      pause = std::min(pause * 2, std::chrono::milliseconds(10000));
    }
    ingest_state_->waiting_key.store(0);
    std::lock_guard<std::mutex> lk(ingest_state_->mu);
    auto& blocks = ingest_state_->missing_blocks;
    if (o == DraftOpen::kMissing && running_.load()) {
      blocks[block].gone = true;  // its later keys are given up after one more ask
    } else if (o == DraftOpen::kOpened || o == DraftOpen::kDestroyed || o == DraftOpen::kDamaged) {
      blocks.erase(block);  // it exists (kUnread says nothing)
    }
    return o;
  }

  // When keys of `block` began to be missing here (now, for a block not
  // seen missing for kMissingForgotUs, or kGoneForgotUs once given up);
  // notes it seen missing now (*now_us).
  int64_t NoteMissing(uint64_t block, int64_t* now_us) {
    const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    *now_us = now;
    std::lock_guard<std::mutex> lk(ingest_state_->mu);
    auto& blocks = ingest_state_->missing_blocks;
    for (auto it = blocks.begin(); it != blocks.end();) {
      const int64_t keep = it->second.gone ? kGoneForgotUs : kMissingForgotUs;
      it = now - it->second.last_us > keep ? blocks.erase(it) : std::next(it);
    }
    IngestState::MissingBlock& b = blocks[block];
    if (b.first_us == 0) b.first_us = now;
    b.last_us = now;
    return b.first_us;
  }

  void ForgetMissingBlock(uint64_t key) {
    if (key == 0) return;
    std::lock_guard<std::mutex> lk(ingest_state_->mu);
    ingest_state_->missing_blocks.erase((key - 1) / SharedKeyStore::kKeysPerBlock);
  }

  // A webhook of the message at `seq`, acknowledged to its sender, that no
  // node can ever read: skipped rather than stopping the partition, whose
  // later webhooks would expire waiting behind it. Logged and counted
  // (dfm_cluster_ingest_lost_total, an alert) once its batch is acked
  // (ReportLost): a batch that fails comes again, and so would it.
  void Lost(uint64_t seq, const char* why) { lost_here_.emplace_back(seq, why); }
  void ReportLost() {
    for (const auto& [seq, why] : lost_here_) {
      Logger("cluster")->critical(
          "event=ingest_webhook_lost partition={} stream_seq={} reason=\"{}\"", p_, seq, why);
      ingest_state_->lost.fetch_add(1);  // after its line: who sees the count finds the line
    }
    lost_here_.clear();
  }

  // Destroys the front keys of the webhooks appended; false (logged) when
  // it cannot: they are then not acked, so they come again, open, are
  // found appended, and their keys are destroyed then.
  bool DestroyFrontKeys(const std::vector<uint64_t>& keys) {
    if (keys.empty()) return true;
    Status s = keys_->Destroy(keys);
    if (!s.ok())
      Logger("cluster")->error("event=front_keys_not_destroyed partition={} count={} error=\"{}\"", p_,
                               keys.size(), s.ToString());
    return s.ok();
  }

  // Pulls webhooks for this partition and appends them, strictly in the
  // order of DFM_IN_<p>: each message must be the next sequence number.
  // One that was handed to a pull whose answer never arrived (a NATS
  // server died with it) comes again only later, after newer ones; so a
  // gap stops the batch there and the consumer is made again from the
  // first missing message. What was appended is acked (AckAll: one ack
  // per batch, never past a gap).
  //
  // A pull that keeps failing, or a consumer that hands nothing out for
  // seconds while its stream holds more (lost with the NATS server that
  // led it, or deleted), is made again from the next message; when that
  // fails too, the partition is broken and started again.
  void IngestLoop() {
    auto logger = Logger("cluster");
    int failures = 0, idle = 0;
    while (running_.load() && !broken_.load()) {
      std::vector<PulledMsg> msgs;
      Status s = consumer_->Fetch(256, 250, &msgs);
      if (!s.ok()) {
        if (++failures == 1) logger->warn("event=ingest_pull_failed partition={} error=\"{}\"", p_, s.ToString());
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        if (failures < kPullFailuresBeforeResubscribe) continue;
        failures = 0;
        if (!Resubscribe("pulls fail")) return;
        continue;
      }
      failures = 0;
      if (msgs.empty()) {
        if (++idle >= kIdlePullsBeforeCheck) {
          idle = 0;
          uint64_t pending = 0;
          const Status st = nats_->ConsumerPending(InStream(p_), consumer_name_, &pending);
          if ((!st.ok() || pending > 0) && !Resubscribe(st.ok() ? "idle while messages wait" : "consumer gone"))
            return;
        }
        continue;
      }
      idle = 0;
      std::vector<uint64_t> batch_keys;  // the front keys of `drafts`
      lost_here_.clear();
      std::vector<EventDraft> drafts;
      size_t taken = 0;  // msgs[0, taken) are in order (new or already appended)
      bool gap = false;
      for (; taken < msgs.size(); ++taken) {
        const uint64_t seq = msgs[taken].stream_seq();
        if (seq < next_in_) continue;  // appended before (a redelivery)
        if (seq > next_in_) {
          gap = true;
          break;
        }
        ++next_in_;
        std::vector<TakenDraft> in_msg;
        if (!DecodeDrafts(msgs[taken].data(), &in_msg).ok()) {
          if (WrittenByNewerBuild(msgs[taken].data())) {
            // A newer build wrote it: kept for a node that reads it.
            logger->error("event=ingest_frame_newer partition={} stream_seq={} reason=\"written by a newer "
                          "build: upgrade this node\"", p_, seq);
            broken_.store(true);
            return;
          }
          Lost(seq, "its frame does not decode");
          continue;
        }
        for (size_t i = 0; i < in_msg.size(); ++i) {
          EventDraft& d = in_msg[i].draft;
          uint64_t front_key = 0;
          const Taken t = Take(in_msg[i].sealed, seq, &d, &front_key);
          if (t == Taken::kBroken) return;
          if (t == Taken::kSkip) continue;
          if (front_key != 0) batch_keys.push_back(front_key);
          if (d.idempotency_key.empty()) {
            // The stream's position (and its place in a batch) is the
            // webhook's identity: a redelivery after a takeover is then
            // still one event.
            d.idempotency_system = "cluster.ingest";
            d.idempotency_key = std::to_string(seq);
            if (in_msg.size() > 1) d.idempotency_key += "." + std::to_string(i);
          }
          drafts.push_back(std::move(d));
        }
      }
      for (size_t at = 0; s.ok() && at < drafts.size(); at += kAppendDrafts) {
        const auto from = drafts.begin() + static_cast<std::ptrdiff_t>(at);
        const auto to = drafts.begin() + static_cast<std::ptrdiff_t>(std::min(drafts.size(), at + kAppendDrafts));
        std::vector<EventDraft> some(std::make_move_iterator(from), std::make_move_iterator(to));
        std::vector<AppendOutcome> outcomes;
        s = log_->Append(std::move(some), &outcomes);
      }
      if (!s.ok()) {
        // Start again from the replica and the consumer's ack floor.
        logger->error("event=ingest_append_failed partition={} error=\"{}\"", p_, s.ToString());
        broken_.store(true);
        return;
      }
      // Before the ack: a redelivery whose key is gone was appended.
      if (!DestroyFrontKeys(batch_keys)) {
        broken_.store(true);
        return;
      }
      if (taken > 0) msgs[taken - 1].Ack();
      ReportLost();
      if (gap) {
        logger->warn("event=ingest_gap partition={} expected={} got={}", p_, next_in_,
                     msgs[taken].stream_seq());
        uint64_t first = 0, last = 0;
        if (nats_->Bounds(InStream(p_), &first, &last).ok() && first > next_in_) {
          // Older than cluster.ingest_max_age_s and never taken: gone.
          logger->critical("event=ingest_expired partition={} from={} to={} reason=\"webhooks the partition did "
                           "not take within cluster.ingest_max_age_s are lost\"", p_, next_in_, first - 1);
          next_in_ = first;
        }
        if (!Resubscribe("a gap")) return;
      }
    }
  }

  const uint32_t p_;
  const Config* config_;
  NatsClient* nats_;
  const std::string node_;
  std::atomic<uint64_t> lease_rev_;
  const PartitionKeysOpener open_keys_;
  std::shared_ptr<KeyStore> keys_;  // null: not sealed
  std::unique_ptr<RocksDbEventLog> log_;
  std::unique_ptr<PartitionWork> work_;
  std::mutex reload_mu_;
  const Config* reloaded_ = nullptr;  // the last Reload's (kept alive by the Reloader)
  std::unique_ptr<NatsClient::PullConsumer> consumer_;
  std::thread ingest_, starter_;
  std::atomic<bool> running_{false}, broken_{false}, started_{false};
  std::atomic<bool> stopping_{false};  // Stop has begun: a start gives up
  bool abandoned_ = false;             // the start gave up (Stopping); starter thread
  std::string abandon_cause_;          // what its last step returned (Stopping)
  IngestState* const ingest_state_;  // the node's, for this partition (Lost, WaitForKey)
  std::vector<std::pair<uint64_t, const char*>> lost_here_;  // this batch's (ingest thread)
  std::unique_ptr<ErasureScrubber> scrubber_;  // after an erasure, apart from its answer
  std::atomic<uint64_t> position_{0};
  ReplicaSequence handed_;  // what went to DFM_LOG_<p> (the log's writer thread)
  uint64_t next_in_ = 1;  // the DFM_IN_<p> sequence to append next (ingest thread)
  std::string consumer_name_;  // of consumer_
  uint64_t subscriptions_ = 0;
  bool stopped_ = false;
};

}  // namespace

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
