#include "cluster/node.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "cluster/leases.h"
#include "cluster/nats_client.h"
#include "cluster/wire.h"
#include "storage/rocksdb_event_log.h"
#include "util/clock.h"
#include "util/logging.h"

namespace dfm {

namespace {
constexpr char kBucket[] = "dfm_leases";
// A frame stays under NATS's default 1 MiB max_payload.
constexpr size_t kMaxFrame = 900 * 1024;
constexpr int64_t kPublishTimeoutMs = 5000;
constexpr int64_t kAckWaitS = 10;
constexpr int kIngestSenders = 8;

std::string LogStream(uint32_t p) { return "DFM_LOG_" + std::to_string(p); }
std::string InStream(uint32_t p) { return "DFM_IN_" + std::to_string(p); }
constexpr char kInConsumer[] = "in";
std::string LogSubject(uint32_t p) { return "dfm.log." + std::to_string(p); }
std::string InSubject(uint32_t p) { return "dfm.in." + std::to_string(p); }
std::string LeaseKey(uint32_t p) { return "part." + std::to_string(p); }
std::string NodeKey(const std::string& node) { return "node." + node; }

// ---------------------------------------------------------------- ingest

// The HTTP front's log in cluster mode: an append is a publish to DFM_IN_<p>;
// everything else is the node's own log, which holds nothing (health,
// metrics and the console read it).
class IngestLog : public EventLog {
 public:
  IngestLog(NatsClient* nats, EventLog* local, uint32_t partitions)
      : nats_(nats), local_(local), partitions_(partitions) {
    for (int i = 0; i < kIngestSenders; ++i) senders_.emplace_back([this] { SendLoop(); });
  }
  ~IngestLog() override { Close(); }
  void Close() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (closed_) return;
      closed_ = true;
    }
    cv_.notify_all();
    for (auto& t : senders_) t.join();
  }
  uint64_t published() const { return published_.load(); }

  void AppendAsync(std::vector<EventDraft> drafts, AppendCallback cb) override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!closed_) {
        queue_.push_back({std::move(drafts), std::move(cb)});
        cv_.notify_one();
        return;
      }
    }
    cb(Status::Unavailable("node is stopping"), {});
  }
  Status Health() const override {
    if (!nats_->connected()) return Status::Unavailable("not connected to NATS");
    return local_->Health();
  }
  uint64_t LastSequence() const override { return local_->LastSequence(); }
  uint64_t WaitForSequence(uint64_t seq, std::chrono::milliseconds t) const override {
    return local_->WaitForSequence(seq, t);
  }
  Status Read(uint64_t from, size_t max, std::vector<Event>* out) const override {
    return local_->Read(from, max, out);
  }
  Status ReadStream(std::string_view tenant, std::string_view stream, uint64_t from, size_t max,
                    std::vector<Event>* out) const override {
    return local_->ReadStream(tenant, stream, from, max, out);
  }
  Status ScanRecords(uint64_t from,
                     const std::function<bool(uint64_t, std::string_view)>& fn) const override {
    return local_->ScanRecords(from, fn);
  }
  Status LookupIdempotency(std::string_view tenant, std::string_view system, std::string_view key,
                           uint64_t* seq) const override {
    return local_->LookupIdempotency(tenant, system, key, seq);
  }
  Status LookupEventId(const EventId& id, uint64_t* seq) const override {
    return local_->LookupEventId(id, seq);
  }
  Status ReadCheckpoint(std::string_view consumer, uint64_t* seq) const override {
    return local_->ReadCheckpoint(consumer, seq);
  }
  Status CommitConsumer(std::string_view consumer, uint64_t seq,
                        const std::vector<StateOp>& ops) override {
    return local_->CommitConsumer(consumer, seq, ops);
  }
  Status CommitConsumerDurable(std::string_view consumer, uint64_t seq,
                               const std::vector<StateOp>& ops) override {
    return local_->CommitConsumerDurable(consumer, seq, ops);
  }
  Status GetConsumerState(std::string_view consumer, std::string_view key,
                          std::string* value) const override {
    return local_->GetConsumerState(consumer, key, value);
  }
  Status ScanConsumerState(
      std::string_view consumer, std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    return local_->ScanConsumerState(consumer, prefix, fn);
  }
  Status DropConsumer(std::string_view consumer) override { return local_->DropConsumer(consumer); }

 private:
  struct Item {
    std::vector<EventDraft> drafts;
    AppendCallback cb;
  };
  void SendLoop() {
    for (;;) {
      Item item;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return closed_ || !queue_.empty(); });
        if (queue_.empty()) return;
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      std::vector<AppendOutcome> outcomes;
      Status s;
      for (auto& d : item.drafts) {
        {
          std::lock_guard<std::mutex> lk(ids_mu_);
          d.id = ids_.Next(SystemClock::Instance()->NowMicros() / 1000);
        }
        // The webhook's own id de-duplicates it in the stream's window;
        // the partition's log de-duplicates it for ever (its idempotency
        // index), so a vendor's retry a day later is still one event.
        std::string msg_id;
        if (!d.idempotency_key.empty())
          msg_id = d.tenant + "/" + d.idempotency_system + "/" + d.idempotency_key;
        PublishAck ack;
        const uint32_t part = PartitionOf(d.tenant, partitions_);
        s = nats_->Publish(InSubject(part), EncodeDraft(d), msg_id, 0, kPublishTimeoutMs, &ack);
        if (!s.ok()) break;
        AppendOutcome o;
        o.seq = ack.seq;
        o.duplicate = ack.duplicate;
        o.id = d.id;
        if (ack.duplicate) {
          // Answered with the first delivery's id (one more read, for
          // duplicates only).
          std::string first;
          EventDraft was;
          if (nats_->GetMsg(InStream(part), ack.seq, &first).ok() && DecodeDraft(first, &was).ok())
            o.id = was.id;
        }
        outcomes.push_back(o);
      }
      if (s.ok()) {
        published_.fetch_add(outcomes.size());
        item.cb(s, outcomes);
      } else {
        item.cb(Status::Unavailable("replicated ingest: " + s.ToString()), {});
      }
    }
  }

  NatsClient* nats_;
  EventLog* local_;
  const uint32_t partitions_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool closed_ = false;
  std::vector<std::thread> senders_;
  std::atomic<uint64_t> published_{0};
  std::mutex ids_mu_;
  EventIdGenerator ids_;
};

// ------------------------------------------------------------- partition

// One partition while this node holds its lease.
class Partition {
 public:
  Partition(uint32_t p, const Config* config, NatsClient* nats, std::string node, uint64_t lease_rev)
      : p_(p), config_(config), nats_(nats), node_(std::move(node)), lease_rev_(lease_rev) {}
  ~Partition() { Stop(); }

  // Start() on a thread of its own, so that the coordinator goes on
  // renewing leases meanwhile; a failure marks the partition broken (the
  // coordinator stops it and, while it holds the lease, starts it again).
  void StartAsync(const PartitionWorkFactory& factory) {
    starter_ = std::thread([this, factory] {
      Status s = Start(factory);
      if (s.ok()) {
        started_.store(true);
      } else {
        Logger("cluster")->error("event=partition_start_failed partition={} error=\"{}\"", p_,
                                 s.ToString());
        broken_.store(true);
      }
    });
  }
  bool started() const { return started_.load(); }

  Status Start(const PartitionWorkFactory& factory) {
    auto logger = Logger("cluster");
    RocksDbLogOptions opts;
    char dir[32];
    snprintf(dir, sizeof dir, "p%03u", p_);
    opts.path = (std::filesystem::path(config_->data_dir()) / "partitions" / dir).string();
    opts.min_free_bytes = config_->min_free_bytes();
    opts.replicate = [this](const std::vector<PlannedRecord>& r, uint64_t* pos) {
      return Replicate(r, pos);
    };
    std::error_code ec;
    std::filesystem::create_directories(opts.path, ec);
    Status s = RocksDbEventLog::Open(opts, &log_);
    if (!s.ok()) return s;
    const auto started = std::chrono::steady_clock::now();
    s = CatchUp();
    if (!s.ok()) return s;
    const auto caught = std::chrono::steady_clock::now();
    const uint32_t n = static_cast<uint32_t>(config_->cluster().partitions);
    const uint32_t p = p_;
    s = factory(log_.get(), [p, n](const std::string& t) { return PartitionOf(t, n) == p; }, &work_);
    if (!s.ok()) return s;
    s = nats_->Subscribe(InStream(p_), InSubject(p_), kInConsumer, kAckWaitS, 0, &consumer_, &next_in_);
    if (!s.ok()) return s;
    running_ = true;
    ingest_ = std::thread([this] { IngestLoop(); });
    auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
    logger->info("event=partition_started partition={} log_seq={} replica={} catch_up_ms={} start_ms={}",
                 p_, log_->LastSequence(), position_.load(), ms(caught - started),
                 ms(std::chrono::steady_clock::now() - started));
    return Status::OK();
  }

  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    if (starter_.joinable()) starter_.join();
    started_.store(false);
    running_ = false;
    if (ingest_.joinable()) ingest_.join();
    consumer_.reset();
    if (work_) work_->Stop();
    work_.reset();
    if (log_) log_->Close();
    log_.reset();
  }

  bool broken() const { return broken_.load(); }
  // REQUIRES: started().
  uint64_t log_seq() const { return log_->LastSequence(); }
  uint64_t sync_behind() const { return work_->Behind(log_seq()); }
  uint64_t position() const { return position_.load(); }
  void set_lease_rev(uint64_t rev) { lease_rev_.store(rev); }
  void Reload(const Config& c) {
    if (work_) work_->Reload(c);
  }

 private:
  // The log's replicate hook (writer thread): the records go to DFM_LOG_<p>
  // in frames, each expecting the stream to end where this node last saw
  // it. Anything but a clean ack breaks the partition: the coordinator
  // stops it and starts it again from the replica, which is the truth.
  Status Replicate(const std::vector<PlannedRecord>& records, uint64_t* position) {
    if (broken_.load()) return Status::Unavailable("partition is being restarted from its replica");
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
        if (fenced) fenced_.fetch_add(1);
        Logger("cluster")->error("event=partition_{} partition={} error=\"{}\"",
                                 fenced ? "fenced" : "replica_failed", p_, s.ToString());
        return Status::Unavailable("partition " + std::to_string(p_) + ": " + s.ToString());
      }
      position_.store(ack.seq);
    }
    *position = position_.load();
    return Status::OK();
  }

  // Reads what the local log lacks of DFM_LOG_<p>, in batches of frames.
  Status CatchUp() {
    uint64_t pos = 0;
    Status s = log_->ReadCheckpoint(kReplicaCheckpoint, &pos);
    if (!s.ok()) return s;
    uint64_t last = 0;
    s = nats_->LastSeq(LogStream(p_), &last);
    if (!s.ok()) return s;
    std::vector<ReplicaRecord> batch;
    for (uint64_t seq = pos + 1; seq <= last; ++seq) {
      std::string frame;
      s = nats_->GetMsg(LogStream(p_), seq, &frame);
      if (!s.ok()) return s;
      LogChunk c;
      s = DecodeChunk(frame, &c);
      if (!s.ok()) return Status::Corruption("DFM_LOG_" + std::to_string(p_) + " #" + std::to_string(seq) + ": " + s.ToString());
      for (auto& r : c.records) batch.push_back(std::move(r));
      if (batch.size() >= 4096 || seq == last) {
        s = log_->ImportRecords(batch, seq);
        if (!s.ok()) return s;
        batch.clear();
      }
    }
    position_.store(std::max(pos, last));
    return Status::OK();
  }

  // Pulls webhooks for this partition and appends them; acks once durable.
  // Pulls webhooks for this partition and appends them, strictly in the
  // order of DFM_IN_<p>: each message must be the next sequence number.
  // One that was handed to a pull whose answer never arrived (a NATS
  // server died with it) comes again only later, after newer ones; so a
  // gap stops the batch there and the consumer is made again from the
  // first missing message. What was appended is acked (AckAll: one ack
  // per batch, never past a gap).
  void IngestLoop() {
    auto logger = Logger("cluster");
    while (running_.load() && !broken_.load()) {
      std::vector<PulledMsg> msgs;
      Status s = consumer_->Fetch(256, 250, &msgs);
      if (!s.ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      if (msgs.empty()) continue;
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
        EventDraft d;
        if (!DecodeDraft(msgs[taken].data(), &d).ok()) {
          // Never readable: skipped, not redelivered to stall the partition.
          logger->error("event=ingest_frame_unreadable partition={} stream_seq={}", p_, seq);
          continue;
        }
        if (d.idempotency_key.empty()) {
          // The stream's position is the webhook's identity: a redelivery
          // after a takeover is then still one event.
          d.idempotency_system = "cluster.ingest";
          d.idempotency_key = std::to_string(seq);
        }
        drafts.push_back(std::move(d));
      }
      std::vector<AppendOutcome> outcomes;
      const size_t n = drafts.size();
      s = drafts.empty() ? Status::OK() : log_->Append(std::move(drafts), &outcomes);
      if (!s.ok()) {
        // Start again from the replica and the consumer's ack floor.
        logger->error("event=ingest_append_failed partition={} error=\"{}\"", p_, s.ToString());
        broken_.store(true);
        return;
      }
      if (taken > 0) msgs[taken - 1].Ack();
      ingested_.fetch_add(n);
      if (gap) {
        logger->warn("event=ingest_gap partition={} expected={} got={}", p_, next_in_,
                     msgs[taken].stream_seq());
        consumer_.reset();
        s = nats_->Subscribe(InStream(p_), InSubject(p_), kInConsumer, kAckWaitS, next_in_, &consumer_,
                             &next_in_);
        if (!s.ok()) {
          broken_.store(true);
          return;
        }
      }
    }
  }


 public:
  std::atomic<uint64_t> ingested_{0};
  std::atomic<uint64_t> fenced_{0};

 private:
  const uint32_t p_;
  const Config* config_;
  NatsClient* nats_;
  const std::string node_;
  std::atomic<uint64_t> lease_rev_;
  std::unique_ptr<RocksDbEventLog> log_;
  std::unique_ptr<PartitionWork> work_;
  std::unique_ptr<NatsClient::PullConsumer> consumer_;
  std::thread ingest_, starter_;
  std::atomic<bool> running_{false}, broken_{false}, started_{false};
  std::atomic<uint64_t> position_{0};
  uint64_t next_in_ = 1;  // the DFM_IN_<p> sequence to append next (ingest thread)
  bool stopped_ = false;
};

std::string HostName() {
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  return host;
}
}  // namespace

// ------------------------------------------------------------------ node

struct ClusterNode::Impl {
  const Config* config = nullptr;
  PartitionWorkFactory factory;
  std::string node;
  uint32_t partitions = 0;
  std::unique_ptr<NatsClient> nats;
  std::unique_ptr<RocksDbEventLog> local;
  std::unique_ptr<IngestLog> ingest;

  // Owned by the coordinator thread.
  std::map<uint32_t, std::unique_ptr<Partition>> running;
  std::map<uint32_t, uint64_t> lease_rev;
  std::map<uint32_t, std::chrono::steady_clock::time_point> renewed_at;
  bool nats_trouble = false;  // the last tick could not reach NATS (logged once)
  std::thread coordinator, observer;
  std::mutex run_mu;  // `running` and `lease_rev`: the coordinator's tick, Reload
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;

  // What health and metrics show (the coordinator's last look).
  struct PartView {
    std::string owner;
    uint64_t lag = 0;
    bool lag_known = false;
    uint64_t log_seq = 0;
    uint64_t sync_behind = 0;
  };
  mutable std::mutex view_mu;
  std::vector<PartView> view;
  std::vector<std::string> live;
  std::vector<std::string> owners;  // by partition, as the coordinator last saw
  std::atomic<uint64_t> takeovers{0}, releases{0}, restarts{0}, lease_losses{0};
  uint64_t fenced_before = 0;  // of partitions no longer running

  void Coordinate();
  void Tick();
  void Observe();
  void StopPartition(uint32_t p, bool release);
};

void ClusterNode::Impl::StopPartition(uint32_t p, bool release) {
  auto it = running.find(p);
  if (it != running.end()) {
    fenced_before += it->second->fenced_.load();
    it->second->Stop();
    running.erase(it);
  }
  renewed_at.erase(p);
  if (release) {
    Status s = nats->KvDelete(LeaseKey(p));
    if (!s.ok()) Logger("cluster")->warn("event=lease_release_failed partition={} error=\"{}\"", p, s.ToString());
  }
  lease_rev.erase(p);
}

void ClusterNode::Impl::Tick() {
  std::lock_guard<std::mutex> run_lock(run_mu);
  auto logger = Logger("cluster");
  const auto now = std::chrono::steady_clock::now();
  const auto ttl = std::chrono::seconds(config->cluster().lease_ttl_s);
  // First what needs no NATS: a broken partition (fenced, cut off from its
  // replica, failed to start) stops now and starts again once its lease is
  // renewed; one whose lease may have lapsed stops (someone may hold it).
  std::vector<uint32_t> broken, lapsed;
  for (const auto& [p, part] : running) {
    auto r = renewed_at.find(p);
    if (r == renewed_at.end() || now - r->second >= ttl) {
      lapsed.push_back(p);
    } else if (part->broken()) {
      broken.push_back(p);
    }
  }
  for (uint32_t p : lapsed) {
    logger->warn("event=lease_lost partition={} reason=not_renewed_in_time", p);
    lease_losses.fetch_add(1);
    StopPartition(p, false);
  }
  for (uint32_t p : broken) {
    const uint64_t rev = lease_rev[p];
    const auto at = renewed_at[p];
    StopPartition(p, false);
    lease_rev[p] = rev;  // still held: restarted below once renewed
    renewed_at[p] = at;
    restarts.fetch_add(1);
  }
  auto unreachable = [&](const char* what, const Status& st) {
    if (!nats_trouble) logger->warn("event=coordination_failed step={} error=\"{}\"", what, st.ToString());
    nats_trouble = true;
  };
  if (!nats->connected()) return unreachable("connect", Status::Unavailable("not connected"));
  Status s = nats->KvPut(NodeKey(node), std::to_string(SystemClock::Instance()->NowMicros()));
  if (!s.ok()) return unreachable("heartbeat", s);
  std::vector<std::string> keys;
  if (s = nats->KvKeys(&keys); !s.ok()) return unreachable("keys", s);
  std::vector<std::string> nodes;
  for (const auto& k : keys)
    if (k.rfind("node.", 0) == 0) nodes.push_back(k.substr(5));
  std::vector<LeaseView> leases(partitions);
  for (uint32_t p = 0; p < partitions; ++p) {
    NatsClient::KvEntry e;
    if (s = nats->KvGet(LeaseKey(p), &e); !s.ok()) return unreachable("lease_read", s);
    if (e.present) leases[p] = {e.value, e.rev};
  }
  if (nats_trouble) logger->info("event=coordination_resumed");
  nats_trouble = false;
  // A read may come from a replica that lags (the bucket's direct gets):
  // what this node holds it knows better, and every write is a
  // compare-and-set on the revision it last wrote, so a stale read can
  // delay a claim but never make two holders.
  for (const auto& [p, rev] : lease_rev) leases[p] = {node, rev};
  LeasePlan plan = PlanLeases(node, nodes, leases);
  for (uint32_t p : plan.release) {
    logger->info("event=partition_released partition={} reason=rebalance", p);
    StopPartition(p, true);
    releases.fetch_add(1);
    leases[p] = LeaseView();
  }
  for (uint32_t p : plan.renew) {
    if (std::find(plan.release.begin(), plan.release.end(), p) != plan.release.end()) continue;
    uint64_t rev = 0;
    s = nats->KvUpdate(LeaseKey(p), node, leases[p].rev, &rev);
    if (!s.ok()) {
      // Someone else's now: stop at once. Not answered (NATS electing a
      // leader, a slow link): go on while the lease cannot have lapsed;
      // the log's fence stops any write after that anyway.
      auto r = renewed_at.find(p);
      if (s.code() == Status::Code::kAlreadyExists || r == renewed_at.end() || now - r->second >= ttl) {
        logger->warn("event=lease_lost partition={} error=\"{}\"", p, s.ToString());
        lease_losses.fetch_add(1);
        StopPartition(p, false);
      }
      continue;
    }
    lease_rev[p] = rev;
    renewed_at[p] = now;
    auto it = running.find(p);
    if (it == running.end()) plan.claim.push_back(p);  // held (a restart of this node): run it
    else it->second->set_lease_rev(rev);
  }
  for (uint32_t p : plan.claim) {
    uint64_t rev = lease_rev.count(p) ? lease_rev[p] : 0;
    if (rev == 0) {
      s = nats->KvCreate(LeaseKey(p), node, &rev);
      if (!s.ok()) continue;  // someone else was quicker
      lease_rev[p] = rev;
      renewed_at[p] = now;
    }
    auto part = std::make_unique<Partition>(p, config, nats.get(), node, rev);
    part->StartAsync(factory);
    takeovers.fetch_add(1);
    running[p] = std::move(part);
  }
  std::lock_guard<std::mutex> lk(view_mu);
  live = std::move(nodes);
  for (uint32_t p = 0; p < partitions; ++p) owners[p] = running.count(p) ? node : leases[p].owner;
}

// Every second, apart from the leases (a slow answer must not delay a
// renewal): each partition's lag, and the sync's of those running here.
void ClusterNode::Impl::Observe() {
  pthread_setname_np(pthread_self(), "dfm-observe");
  std::unique_lock<std::mutex> lk(stop_mu);
  while (!stopping) {
    lk.unlock();
    std::vector<PartView> v(partitions);
    for (uint32_t p = 0; p < partitions; ++p) {
      uint64_t pending = 0;
      if (nats->connected() && nats->ConsumerPending(InStream(p), kInConsumer, &pending).ok()) {
        v[p].lag = pending;
        v[p].lag_known = true;
      }
    }
    {
      std::lock_guard<std::mutex> run_lock(run_mu);
      for (auto& [p, part] : running)
        if (part->started()) {
          v[p].log_seq = part->log_seq();
          v[p].sync_behind = part->sync_behind();
        }
    }
    {
      std::lock_guard<std::mutex> vl(view_mu);
      for (uint32_t p = 0; p < partitions; ++p) v[p].owner = owners[p];
      view = std::move(v);
    }
    lk.lock();
    stop_cv.wait_for(lk, std::chrono::seconds(1), [&] { return stopping; });
  }
}

void ClusterNode::Impl::Coordinate() {
  pthread_setname_np(pthread_self(), "dfm-cluster");
  const auto every = std::chrono::milliseconds(config->cluster().lease_ttl_s * 1000 / 3);
  std::unique_lock<std::mutex> lk(stop_mu);
  while (!stopping) {
    lk.unlock();
    Tick();
    lk.lock();
    stop_cv.wait_for(lk, every, [&] { return stopping; });
  }
  lk.unlock();
  std::lock_guard<std::mutex> run_lock(run_mu);
  std::vector<uint32_t> held;
  for (const auto& [p, part] : running) held.push_back(p);
  for (uint32_t p : held) StopPartition(p, true);
  (void)nats->KvDelete(NodeKey(node));
}

Status ClusterNode::Start(const Config& config, PartitionWorkFactory work,
                          std::unique_ptr<ClusterNode>* out) {
  auto n = std::unique_ptr<ClusterNode>(new ClusterNode());
  n->impl_ = std::make_unique<Impl>();
  Impl& im = *n->impl_;
  const ClusterSettings& cs = config.cluster();
  im.config = &config;
  im.factory = std::move(work);
  im.node = cs.node_id.empty() ? HostName() : cs.node_id;
  im.partitions = static_cast<uint32_t>(cs.partitions);
  Status s = NatsClient::Connect(cs.nats_urls, "dfm " + im.node, &im.nats);
  if (!s.ok()) return s;
  // The streams and the bucket: created by whichever node comes first.
  const int replicas = static_cast<int>(cs.replicas);
  for (int attempt = 0;; ++attempt) {
    s = Status::OK();
    for (uint32_t p = 0; s.ok() && p < im.partitions; ++p) {
      s = im.nats->EnsureStream(InStream(p), InSubject(p), replicas, /*dedup_s=*/600);
      if (s.ok()) s = im.nats->EnsureStream(LogStream(p), LogSubject(p), replicas, /*dedup_s=*/600);
    }
    if (s.ok()) s = im.nats->OpenBucket(kBucket, cs.lease_ttl_s, replicas);
    if (s.ok() || attempt >= 60) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a cluster still forming
  }
  if (!s.ok()) return s;
  RocksDbLogOptions lo;
  lo.path = (std::filesystem::path(config.data_dir()) / "node").string();
  std::error_code ec;
  std::filesystem::create_directories(lo.path, ec);
  s = RocksDbEventLog::Open(lo, &im.local);
  if (!s.ok()) return s;
  im.ingest = std::make_unique<IngestLog>(im.nats.get(), im.local.get(), im.partitions);
  im.view.resize(im.partitions);
  im.owners.resize(im.partitions);
  Logger("cluster")->info("event=cluster_join node={} partitions={} replicas={} lease_ttl_s={}",
                          im.node, im.partitions, replicas, cs.lease_ttl_s);
  im.coordinator = std::thread([&im] { im.Coordinate(); });
  im.observer = std::thread([&im] { im.Observe(); });
  *out = std::move(n);
  return Status::OK();
}

ClusterNode::~ClusterNode() { Stop(); }

void ClusterNode::Stop() {
  Impl& im = *impl_;
  {
    std::lock_guard<std::mutex> lk(im.stop_mu);
    if (im.stopping) return;
    im.stopping = true;
  }
  im.stop_cv.notify_all();
  if (im.coordinator.joinable()) im.coordinator.join();
  if (im.observer.joinable()) im.observer.join();
  if (im.ingest) im.ingest->Close();
  if (im.local) im.local->Close();
}

EventLog* ClusterNode::ingest_log() { return impl_->ingest.get(); }

void ClusterNode::AddHealthParts(JsonObject* parts) const {
  const Impl& im = *impl_;
  std::lock_guard<std::mutex> lk(im.view_mu);
  JsonObject c;
  c.Str("node", im.node).Str("nats", im.nats->connected() ? "connected" : "disconnected");
  JsonArray nodes;
  for (const auto& n : im.live) nodes.Str(n);
  c.Raw("nodes", nodes.Finish());
  JsonArray list;
  for (uint32_t p = 0; p < im.view.size(); ++p) {
    const auto& v = im.view[p];
    JsonObject o;
    o.UInt("partition", p).Str("owner", v.owner).Bool("here", v.owner == im.node);
    if (v.lag_known) o.UInt("lag", v.lag);
    if (v.owner == im.node) o.UInt("log_seq", v.log_seq).UInt("sync_behind", v.sync_behind);
    list.Raw(o.Finish());
  }
  c.Raw("partitions", list.Finish());
  c.UInt("ingested", im.ingest->published());
  parts->Raw("cluster", c.Finish());
}

void ClusterNode::WriteMetrics(MetricsText* out) const {
  const Impl& im = *impl_;
  std::lock_guard<std::mutex> lk(im.view_mu);
  out->Family("dfm_cluster_nats_connected", "gauge", "1 while the node is connected to NATS.")
      .Sample({}, im.nats->connected() ? 1 : 0);
  out->Family("dfm_cluster_nodes", "gauge", "Nodes whose heartbeat is current.")
      .Sample({}, static_cast<double>(im.live.size()));
  auto& owned = out->Family("dfm_cluster_partition_owned", "gauge",
                            "1 for each partition this node holds the lease of.");
  for (uint32_t p = 0; p < im.view.size(); ++p)
    owned.Sample({{"partition", std::to_string(p)}}, im.view[p].owner == im.node ? 1 : 0);
  auto& lag = out->Family("dfm_cluster_partition_lag", "gauge",
                          "Webhooks taken by the cluster and not yet in the partition's log.");
  for (uint32_t p = 0; p < im.view.size(); ++p)
    if (im.view[p].lag_known)
      lag.Sample({{"partition", std::to_string(p)}}, static_cast<double>(im.view[p].lag));
  auto& behind = out->Family("dfm_cluster_partition_sync_lag", "gauge",
                             "Events of a partition running here its sync has not taken in yet.");
  for (uint32_t p = 0; p < im.view.size(); ++p)
    if (im.view[p].owner == im.node)
      behind.Sample({{"partition", std::to_string(p)}}, static_cast<double>(im.view[p].sync_behind));
  out->Family("dfm_cluster_takeovers_total", "counter", "Partitions this node started running.")
      .Sample({}, static_cast<double>(im.takeovers.load()));
  out->Family("dfm_cluster_lease_losses_total", "counter",
              "Partitions this node stopped because its lease lapsed or moved.")
      .Sample({}, static_cast<double>(im.lease_losses.load()));
  out->Family("dfm_cluster_ingest_published_total", "counter",
              "Webhooks this node put in the replicated ingest stream.")
      .Sample({}, static_cast<double>(im.ingest->published()));
}

void ClusterNode::Reload(const Config& config) {
  // The partitions read the configuration they were started with through
  // `config`; a reload reaches the sync of those running now.
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lk(im.run_mu);
  for (auto& [p, part] : im.running) part->Reload(config);
}

}  // namespace dfm
