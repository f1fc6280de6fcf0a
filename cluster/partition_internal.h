// NatsPartition, cluster mode's Partition (cluster/partition.h), declared
// for its two files: partition.cc (start, stop, replication to DFM_LOG_<p>,
// the ingest consumer) and partition_ingest.cc (DFM_IN_<p>'s webhooks
// taken into the log). Not for other users.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cluster/draft_seal.h"
#include "cluster/nats_client.h"
#include "cluster/partition.h"
#include "cluster/replica_sequence.h"
#include "storage/erasure_scrubber.h"
#include "storage/rocksdb_event_log.h"

namespace dfm::cluster_partition {

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
  void StartAsync(const PartitionWorkFactory& factory) override;
  bool started() const override { return started_.load(); }

  Status Start(const PartitionWorkFactory& factory);

  void Stop() override;

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
  Status Replicate(const std::vector<PlannedRecord>& records, uint64_t* position);

  // Start gives up: Stop has begun (the starter thread only). `cause`:
  // what the step that gave up returned, logged with it.
  Status Stopping(const Status& cause = Status::OK());

  // Reads what the local log lacks of DFM_LOG_<p>, kCatchUpFrames frames a
  // request, and imports it 4,096 records at a time; gives up between two
  // frames once Stop has begun (what was imported stays, with its
  // checkpoint).
  Status CatchUp();

  // A consumer of a new name (names.h, InConsumerName) that reads DFM_IN_<p>
  // from `from`, or when 0 from after the highest ack floor of the
  // partition's consumers; then the others whose lease revision is not
  // newer than its own (its own earlier subscriptions among them) are
  // deleted (one that will not go is logged and tried again at the next
  // subscription). A stale owner, whose revision is older, never deletes
  // the current owner's.
  Status OpenConsumer(uint64_t from);

  // The consumer made again from the next message to append; false (the
  // partition broken) when that fails.
  bool Resubscribe(const char* why);

  enum class Taken { kAppend, kSkip, kBroken };
  // Opens a webhook of the message at `seq` of DFM_IN_<p> when the front
  // sealed it (cluster/draft_seal.h; *front_key: the key to destroy once it
  // is appended). Skipped: appended before (its front key destroyed), or
  // never readable (Lost). Broken: its key cannot be read now (started
  // again, it is taken again).
  Taken Take(bool sealed, uint64_t seq, EventDraft* d, uint64_t* front_key);

  // A front key the key store's leader answers absent: a leader just
  // elected may not have applied a block a front made a moment before
  // (a key is made before its webhook is published). Asked again, 1 s and
  // then up to 10 s apart, until KeyGoneAfterUs() of this node's steady
  // clock (no other machine's) after keys of its block began to be missing
  // here (IngestState, kept across the partition's restarts: a block gone
  // costs one wait, not one per webhook, whatever other fronts' keys open
  // meanwhile; a block not seen missing for kMissingForgotUs is a new
  // wait); the partition waits meanwhile. kMissing then; else its answer.
  DraftOpen WaitForKey(uint64_t seq, EventDraft* d, uint64_t* front_key);

  // When keys of `block` began to be missing here (now, for a block not
  // seen missing for kMissingForgotUs, or kGoneForgotUs once given up);
  // notes it seen missing now (*now_us).
  int64_t NoteMissing(uint64_t block, int64_t* now_us);

  void ForgetMissingBlock(uint64_t key);

  // A webhook of the message at `seq`, acknowledged to its sender, that no
  // node can ever read: skipped rather than stopping the partition, whose
  // later webhooks would expire waiting behind it. Logged and counted
  // (dfm_cluster_ingest_lost_total, an alert) once its batch is acked
  // (ReportLost): a batch that fails comes again, and so would it.
  void Lost(uint64_t seq, const char* why) { lost_here_.emplace_back(seq, why); }
  void ReportLost();

  // Destroys the front keys of the webhooks appended; false (logged) when
  // it cannot: they are then not acked, so they come again, open, are
  // found appended, and their keys are destroyed then.
  bool DestroyFrontKeys(const std::vector<uint64_t>& keys);

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
  void IngestLoop();
  // IngestLoop's steps; each false when the loop ends (stopping, or the
  // partition broken).
  // A pull failed: after kPullFailuresBeforeResubscribe in a row, the
  // consumer is made again.
  bool AfterFailedPull(const Status& s, int* failures);
  // A pull handed nothing: after kIdlePullsBeforeCheck in a row, the
  // consumer is made again if messages wait that it does not hand out.
  bool AfterEmptyPull(int* idle);
  // One pull's webhooks, taken in DFM_IN_<p>'s order up to a gap.
  struct InOrder {
    std::vector<EventDraft> drafts;
    std::vector<uint64_t> keys;  // the front keys of `drafts`
    size_t taken = 0;            // msgs[0, taken) are in order (new or appended before)
    bool gap = false;            // msgs[taken] is past the next sequence number
  };
  bool TakeInOrder(std::vector<PulledMsg>& msgs, InOrder* in);
  // Appends them, destroys their front keys, acks msgs[taken - 1] and
  // reports the lost; a gap makes the consumer again from the first
  // missing message (or past what expired).
  bool AppendInOrder(std::vector<PulledMsg>& msgs, InOrder& in);

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
  IngestState* const ingest_state_;    // the node's, for this partition (Lost, WaitForKey)
  std::vector<std::pair<uint64_t, const char*>> lost_here_;  // this batch's (ingest thread)
  std::unique_ptr<ErasureScrubber> scrubber_;  // after an erasure, apart from its answer
  std::atomic<uint64_t> position_{0};
  ReplicaSequence handed_;     // what went to DFM_LOG_<p> (the log's writer thread)
  uint64_t next_in_ = 1;       // the DFM_IN_<p> sequence to append next (ingest thread)
  std::string consumer_name_;  // of consumer_
  uint64_t subscriptions_ = 0;
  bool stopped_ = false;
};

}  // namespace dfm::cluster_partition
