#include "cluster/node.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cluster/ingest_log.h"
#include "cluster/leases.h"
#include "cluster/names.h"
#include "cluster/nats_client.h"
#include "cluster/node_internal.h"
#include "cluster/node_metrics.h"
#include "cluster/partition.h"
#include "cluster/records_store.h"
#include "cluster/seal_keys.h"
#include "cluster/security.h"
#include "cluster/state_mirror.h"
#include "storage/rocksdb_event_log.h"
#include "util/clock.h"
#include "util/logging.h"
#include "util/worker.h"

namespace dfm {

namespace {
using namespace cluster_names;

// A partition's work, with its reads answered (cluster/reads.h) and its
// status told (dfm.status.<p>) to every node that asks while it runs.
class ServedWork final : public PartitionWork {
 public:
  ServedWork(std::unique_ptr<PartitionWork> work, std::unique_ptr<ReadRouter::Serving> serving,
             std::unique_ptr<NatsClient::Listener> status)
      : work_(std::move(work)), serving_(std::move(serving)), status_(std::move(status)) {}
  void Reload(const Config& config) override { work_->Reload(config); }
  void Stop() override {
    status_.reset();
    serving_.reset();  // the answers under way finish before the log closes
    work_->Stop();
  }
  uint64_t Behind(uint64_t last_seq) const override { return work_->Behind(last_seq); }
  void WriteMetrics(uint64_t last_seq, MetricsText* out) const override { work_->WriteMetrics(last_seq, out); }
  std::string StatusText(uint64_t last_seq) const override { return work_->StatusText(last_seq); }
  bool Answer(const std::string& request, std::function<void(std::string)>* reply) override {
    return work_->Answer(request, reply);
  }
  std::function<DecidedView()> DecidedSource() const override { return work_->DecidedSource(); }

 private:
  std::unique_ptr<PartitionWork> work_;
  std::unique_ptr<ReadRouter::Serving> serving_;
  std::unique_ptr<NatsClient::Listener> status_;
};

// What a partition's node answers for its status while it starts it.
constexpr char kStarting[] = "starting";

// The metrics view's clock: a node's text ages alike whatever the wall
// clock does.
int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string HostName() {
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  return host;
}
}  // namespace

Status ClusterNode::Impl::TellStatus(uint32_t p, std::unique_ptr<NatsClient::Listener>* out) {
  return nats->Listen(StatusSubject(p), [this, p](std::string, NatsClient::Reply reply) {
    std::string text;
    {
      std::lock_guard<std::mutex> lk(view_mu);
      if (p < view.size() && view[p].owner == node) text = view[p].starting ? kStarting : view[p].status;
    }
    reply(std::move(text));
  }, out);
}

void ClusterNode::Impl::AskStatuses(std::vector<PartView>* v) {
  std::vector<std::string> owner_of;
  std::vector<PartView> last;
  {
    std::lock_guard<std::mutex> vl(view_mu);
    owner_of = owners;
    last = view;
  }
  const auto now = std::chrono::steady_clock::now();
  for (uint32_t p = 0; p < partitions; ++p) {
    PartView& here = (*v)[p];
    if (!here.status.empty() || owner_of[p].empty() || owner_of[p] == node) continue;
    std::string text;
    const bool answered = nats->Request(StatusSubject(p), "", kStatusTimeoutMs, &text).ok();
    if (answered && text == kStarting) {
      here.starting = true;
    } else if (answered && !text.empty()) {
      here.status = std::move(text);
      here.status_at = now;
    } else if (p < last.size() && last[p].owner == owner_of[p] && !last[p].status.empty() &&
               now - last[p].status_at < std::chrono::seconds(5)) {
      here.status = last[p].status;
      here.status_at = last[p].status_at;
    }
  }
}

void ClusterNode::Impl::SendMetrics() {
  std::function<std::string()> own;
  {
    std::lock_guard<std::mutex> lk(own_metrics_mu);
    own = own_metrics;
  }
  if (!own) return;
  std::string text = own();
  std::string frame = EncodeNodeMetrics(node, text);
  metrics_view->Put(node, std::move(text), SteadyMicros());
  if (frame.size() > kMaxFrame) {  // its families left out; the others still hear from it
    if (!metrics_too_large)
      Logger("cluster")->warn("event=metrics_not_shared bytes={} reason=\"larger than a NATS message\"",
                              frame.size());
    metrics_too_large = true;
    frame = EncodeNodeMetrics(node, "");
  }
  if (nats->connected()) (void)nats->Send(kMetricsSubject, frame);
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
      // The newest of the partition's consumers (the highest lease
      // revision, then subscription) is the one read.
      std::vector<NatsClient::ConsumerState> consumers;
      if (!nats->connected() || !nats->Consumers(InStream(p), &consumers).ok()) continue;
      const NatsClient::ConsumerState* newest = nullptr;
      std::pair<uint64_t, uint64_t> newest_at{0, 0};
      for (const auto& c : consumers) {
        std::pair<uint64_t, uint64_t> at;
        if (!ParseInConsumer(c.name, &at.first, &at.second)) continue;
        if (!newest || at > newest_at) {
          newest = &c;
          newest_at = at;
        }
      }
      if (newest) {
        v[p].lag = newest->pending;
        v[p].lag_known = true;
      }
    }
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> run_lock(run_mu);
      for (auto& [p, part] : running) {
        v[p].starting = !part->started();
        if (part->started()) {
          v[p].log_seq = part->log_seq();
          v[p].sync_behind = part->sync_behind();
          MetricsText one;
          part->WriteMetrics(&one);
          v[p].metrics = one.Finish();
          v[p].status = part->StatusText();
          v[p].status_at = now;
        }
      }
    }
    AskStatuses(&v);
    {
      std::lock_guard<std::mutex> vl(view_mu);
      for (uint32_t p = 0; p < partitions; ++p) v[p].owner = owners[p];
      view = std::move(v);
    }
    SendMetrics();
    lk.lock();
    stop_cv.wait_for(lk, std::chrono::seconds(1), [&] { return stopping; });
  }
}

Status ClusterNode::Impl::OpenShared(SharedWithWork* shared, std::shared_ptr<StateMirror>* mirror) {
  const ClusterSettings& cs = config->cluster();
  const int replicas = static_cast<int>(cs.replicas);
  Status s = OpenRecordsStore(cs.nats_urls, node, NatsSecurityOf(cs), replicas, &shared->records);
  if (!s.ok()) return s;
  if (cs.state_key.empty()) {
    Logger("cluster")->warn(
        "event=state_not_replicated reason=\"cluster.state_key is not set: OAuth grants and credit budgets stay "
        "on the node that wrote them, and personal data is not sealed (no erasure)\"");
    return Status::OK();
  }
  std::unique_ptr<StateMirror> m;
  s = StateMirror::Open(cs.nats_urls, node, NatsSecurityOf(cs), replicas, cs.state_key, &m);
  if (!s.ok()) return s;
  *mirror = std::move(m);
  shared->replicate_state = [mirror = *mirror](const std::string& tenant, std::string_view consumer,
                                               const std::vector<StateOp>& ops) {
    return mirror->Put(tenant, consumer, ops);
  };
  std::shared_ptr<CasStore> seal;
  s = OpenSealBucket(cs, node, &seal);
  if (!s.ok()) return s;
  open_keys = [seal, key = cs.state_key](uint32_t p, std::shared_ptr<KeyStore>* keys) {
    return OpenPartitionKeys(seal, key, p, keys);
  };
  DropIdleCopies(config->data_dir());  // left by a kill -9: this node runs none yet
  return Status::OK();
}

void ClusterNode::Impl::MakeFactory(SharedWorkFactory work, SharedWithWork shared,
                                    std::shared_ptr<StateMirror> mirror) {
  factory = [this, work = std::move(work), shared, mirror](
                uint32_t p, ServedLog at, std::function<bool(const std::string&)> runs,
                std::unique_ptr<PartitionWork>* w) {
    EventLog* log = at.log;
    if (mirror) {  // the connectors' state the last owner left, before they start
      int restored = 0, unreadable = 0;
      Status st = mirror->Restore(log, runs, &restored, &unreadable);
      if (!st.ok()) return st;
      if (restored > 0) Logger("cluster")->info("event=state_restored entries={}", restored);
    }
    std::unique_ptr<PartitionWork> inner;
    SharedWithWork mine = shared;
    mine.keys = at.keys;
    mine.cancel = at.stopping;
    // The last reload's configuration; one while it starts reaches it
    // through the partition (NatsPartition::Reload).
    Status st = work(*live_config.load(), log, std::move(runs), mine, &inner);
    std::unique_ptr<ReadRouter::Serving> serving;
    std::unique_ptr<NatsClient::Listener> status;
    if (st.ok()) {
      at.work = inner.get();  // owned by the ServedWork below, which stops serving first
      st = reads->Serve(p, at, &serving);
    }
    if (st.ok()) st = TellStatus(p, &status);
    if (!st.ok()) {
      if (inner) inner->Stop();
      return st;
    }
    *w = std::make_unique<ServedWork>(std::move(inner), std::move(serving), std::move(status));
    return Status::OK();
  };
}

Status ClusterNode::Impl::EnsureStreams() {
  const ClusterSettings& cs = config->cluster();
  const int replicas = static_cast<int>(cs.replicas);
  Status s;
  for (int attempt = 0;; ++attempt) {
    s = Status::OK();
    for (uint32_t p = 0; s.ok() && p < partitions; ++p) {
      s = nats->EnsureStream(InStream(p), InSubject(p), replicas, cs.dedup_window_s,
                             cs.ingest_max_age_s);
      if (s.ok()) {  // made before, or by another setting: this one's
        Status u = nats->UpdateStreamLimits(InStream(p), cs.dedup_window_s, cs.ingest_max_age_s);
        if (!u.ok())
          Logger("cluster")->warn("event=ingest_stream_limits_kept stream={} error=\"{}\"", InStream(p), u.ToString());
      }
      if (s.ok()) s = nats->EnsureStream(LogStream(p), LogSubject(p), replicas, /*dedup_s=*/600);
    }
    if (s.ok()) s = nats->OpenBucket(kBucket, cs.lease_ttl_s, replicas);
    if (s.ok() || attempt >= 60) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a cluster still forming
  }
}

Status ClusterNode::Impl::OpenLocal() {
  RocksDbLogOptions lo;
  lo.path = (std::filesystem::path(config->data_dir()) / "node").string();
  std::error_code ec;
  std::filesystem::create_directories(lo.path, ec);
  Status s = RocksDbEventLog::Open(lo, &local);
  if (!s.ok()) return s;
  reads = std::make_unique<ReadRouter>(nats.get(), partitions);
  ingest = MakeIngestLog(
      nats.get(), local.get(), partitions, open_keys,
      [reads = reads.get()](uint32_t p, const SeenAsk& ask, std::vector<Seen>* answer) {
        return reads->AnswerSeenHere(p, ask, answer);
      });
  janitor = std::make_unique<Worker>();
  releaser = std::make_unique<Worker>();
  view.resize(partitions);
  ingest_state = std::make_unique<IngestState[]>(partitions);
  owners.resize(partitions);
  return Status::OK();
}

Status ClusterNode::Start(const Config& config, SharedWorkFactory work,
                          std::unique_ptr<ClusterNode>* out) {
  auto n = std::unique_ptr<ClusterNode>(new ClusterNode());
  n->impl_ = std::make_unique<Impl>();
  Impl& im = *n->impl_;
  const ClusterSettings& cs = config.cluster();
  im.config = &config;
  im.live_config.store(&config);
  im.node = cs.node_id.empty() ? HostName() : cs.node_id;
  im.partitions = static_cast<uint32_t>(cs.partitions);
  SharedWithWork shared;
  std::shared_ptr<StateMirror> mirror;
  Status s = im.OpenShared(&shared, &mirror);
  if (!s.ok()) return s;
  im.MakeFactory(std::move(work), std::move(shared), std::move(mirror));
  s = NatsClient::Connect(cs.nats_urls, "dfm " + im.node, NatsSecurityOf(cs), /*keep_trying=*/true,
                          &im.nats);
  if (!s.ok()) return s;
  // The streams and the buckets: created by whichever node comes first.
  if (s = im.EnsureStreams(); !s.ok()) return s;
  if (s = im.OpenLocal(); !s.ok()) return s;
  Logger("cluster")->info("event=cluster_join node={} partitions={} replicas={} lease_ttl_s={}",
                          im.node, im.partitions, cs.replicas, cs.lease_ttl_s);
  s = im.nats->Watch(kMetricsSubject, [view = im.metrics_view, self = im.node](std::string frame) {
    std::string from, text;
    if (DecodeNodeMetrics(frame, &from, &text) && from != self)
      view->Put(std::move(from), std::move(text), SteadyMicros());
  }, &im.metrics_listener);
  if (!s.ok()) return s;
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
  }
  // The partitions given up end their stop while the coordinator still
  // renews their leases (and gives up or claims nothing more).
  im.winding_down.store(true);
  for (;;) {
    {
      std::lock_guard<std::mutex> lk(im.releasing_mu);
      if (im.releasing.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  {
    std::lock_guard<std::mutex> lk(im.stop_mu);
    if (im.stopping) return;
    im.stopping = true;
  }
  im.stop_cv.notify_all();
  if (im.coordinator.joinable()) im.coordinator.join();
  im.releaser.reset();
  if (im.observer.joinable()) im.observer.join();
  im.metrics_listener.reset();
  im.reads->Drain();  // no answer comes after Stop
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
  std::unique_lock<std::mutex> lk(im.view_mu);
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
  out->Family("dfm_cluster_partition_restarts_total", "counter",
              "Partitions this node stopped and started again from their replica (fenced, "
              "cut off from NATS, or failed to start).")
      .Sample({}, static_cast<double>(im.restarts.load()));
  auto& lost =
      out->Family("dfm_cluster_ingest_lost_total", "counter",
                  "Webhooks acknowledged to their senders that this node skipped as never readable "
                  "(a message that does not decode, a seal that does not open, a front key gone): "
                  "each logged ingest_webhook_lost.");
  for (uint32_t p = 0; p < im.view.size(); ++p)
    lost.Sample({{"partition", std::to_string(p)}},
                static_cast<double>(im.ingest_state[p].lost.load()));
  auto& waiting =
      out->Family("dfm_cluster_ingest_waiting_key", "gauge",
                  "1 while the partition's ingest waits here for front keys its key store "
                  "answers missing (given up after 5 minutes).");
  for (uint32_t p = 0; p < im.view.size(); ++p)
    waiting.Sample({{"partition", std::to_string(p)}}, im.ingest_state[p].waiting_key.load());
  out->Family("dfm_cluster_lease_losses_total", "counter",
              "Partitions this node stopped because its lease lapsed or moved.")
      .Sample({}, static_cast<double>(im.lease_losses.load()));
  out->Family("dfm_cluster_ingest_published_total", "counter",
              "Webhooks this node put in the replicated ingest stream.")
      .Sample({}, static_cast<double>(im.ingest->published()));
  out->Family("dfm_cluster_ingest_messages_total", "counter",
              "Messages of the replicated ingest stream those webhooks went in (several in one when they "
              "waited together).")
      .Sample({}, static_cast<double>(im.ingest->messages()));
  // The sync's families as the observer last took them (at most a second
  // old): a scrape never waits on run_mu, which NATS calls and partition
  // stops hold.
  std::vector<std::pair<std::string, std::string>> parts;
  for (uint32_t p = 0; p < im.view.size(); ++p)
    if (!im.view[p].metrics.empty())
      parts.emplace_back(std::to_string(p), im.view[p].metrics);
  lk.unlock();
  out->Append(MergeLabeled("partition", parts));
}

std::vector<ClusterNode::PartitionStatusText> ClusterNode::PartitionStatuses() const {
  const Impl& im = *impl_;
  std::lock_guard<std::mutex> lk(im.view_mu);
  std::vector<PartitionStatusText> out;
  for (uint32_t p = 0; p < im.view.size(); ++p)
    out.push_back({p, im.view[p].owner, im.view[p].status, im.view[p].starting});
  return out;
}

void ClusterNode::ServeReads(ReadAnswerer answerer) { impl_->reads->SetAnswerer(std::move(answerer)); }

void ClusterNode::AskRead(const std::string& tenant, std::string request,
                          std::function<void(Status, std::string)> done, int64_t timeout_ms) {
  impl_->reads->Ask(tenant, std::move(request), timeout_ms > 0 ? timeout_ms : kReadTimeoutMs, std::move(done));
}

void ClusterNode::ShareMetrics(std::function<std::string()> own) {
  std::lock_guard<std::mutex> lk(impl_->own_metrics_mu);
  impl_->own_metrics = std::move(own);
}

std::string ClusterNode::ClusterMetrics() const { return impl_->metrics_view->Text(SteadyMicros()); }

const std::string& ClusterNode::id() const { return impl_->node; }

std::vector<std::string> ClusterNode::LiveNodes() const {
  const Impl& im = *impl_;
  std::lock_guard<std::mutex> lk(im.view_mu);
  return im.live;
}

bool ClusterNode::MailsAlerts() const {
  const Impl& im = *impl_;
  std::lock_guard<std::mutex> lk(im.view_mu);
  if (im.owners.empty()) return false;
  if (!im.owners[0].empty()) return im.owners[0] == im.node;
  return !im.live.empty() && *std::min_element(im.live.begin(), im.live.end()) == im.node;
}

void ClusterNode::Reload(const Config& config) {
  // A reload reaches the sync of the partitions running now; those started
  // later take `config` from `live` (the factory).
  Impl& im = *impl_;
  im.live_config.store(&config);
  std::lock_guard<std::mutex> lk(im.run_mu);
  for (auto& [p, part] : im.running) part->Reload(config);
}

}  // namespace dfm
