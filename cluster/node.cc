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

// ------------------------------------------------------------------ node

struct ClusterNode::Impl {
  const Config* config = nullptr;  // the one it started with: the cluster's settings
  std::atomic<const Config*> live_config{nullptr};  // the last reload's (Reload), for the work
  PartitionWorkFactory factory;
  PartitionKeysOpener open_keys;  // null: partitions not sealed
  std::string node;
  uint32_t partitions = 0;
  std::unique_ptr<NatsClient> nats;
  std::unique_ptr<RocksDbEventLog> local;
  std::unique_ptr<IngestLog> ingest;
  // Made once connected; drained by Stop.
  std::unique_ptr<ReadRouter> reads;
  // Stops the partitions given up (rebalance) and then releases their
  // leases, off the coordinator: a stop may wait for a catch-up or an
  // erasure under way, while the node's other leases must be renewed.
  std::unique_ptr<Worker> releaser;
  std::mutex releasing_mu;
  std::set<uint32_t> releasing;     // given up, their stop not ended: not claimed again
  std::unique_ptr<Worker> janitor;  // drops the derived state of copies left

  // Owned by the coordinator thread.
  std::map<uint32_t, std::unique_ptr<Partition>> running;
  std::map<uint32_t, uint64_t> lease_rev;
  std::map<uint32_t, std::chrono::steady_clock::time_point> renewed_at;
  bool nats_trouble = false;  // the last tick could not reach NATS (logged once)
  bool looked = false;        // a tick has read the view (PlanLeases' first_look)
  // The coordinator's last successful looks at the bucket: the live nodes
  // and every partition's lease (used when a look fails).
  std::vector<std::string> last_nodes;
  std::vector<LeaseView> last_leases;
  std::vector<uint32_t> lapsed_now;  // scratch: renewals refused this tick
  std::thread coordinator, observer;
  std::mutex run_mu;  // `running` and `lease_rev`: the coordinator's tick, Reload
  std::atomic<bool> winding_down{false};  // Stop waits for the releases under way
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
    std::string metrics;  // of a partition running here: its sync's families (WriteMetrics)
    std::string status;   // its work's StatusText, here or as its node told; "" unknown
    bool starting = false;  // held by its node, which has not started it yet
    std::chrono::steady_clock::time_point status_at;  // when `status` was taken
  };
  mutable std::mutex view_mu;
  std::vector<PartView> view;
  std::vector<std::string> live;
  std::vector<std::string> owners;  // by partition, as the coordinator last saw
  std::atomic<uint64_t> takeovers{0}, restarts{0}, lease_losses{0};
  std::unique_ptr<IngestState[]> ingest_state;  // by partition (MakePartition)
  // GET /metrics?scope=cluster: every node's last text (node_metrics.h),
  // by the steady clock; shared with the subscription that fills it.
  std::shared_ptr<ClusterMetricsView> metrics_view =
      std::make_shared<ClusterMetricsView>(kMetricsStaleUs, kMetricsForgetUs);
  std::mutex own_metrics_mu;
  std::function<std::string()> own_metrics;  // set by ShareMetrics
  std::unique_ptr<NatsClient::Listener> metrics_listener;
  bool metrics_too_large = false;  // logged once
  // The observer's send of this node's metrics to the others.
  void SendMetrics();

  void Coordinate();
  // One round of the coordination, under run_mu, in the steps below:
  // what needs no NATS, the leases held renewed, the heartbeat, then
  // (unless winding down) the view read, the plan carried out and shown.
  void Tick();
  // A running partition whose lease may have lapsed stops (someone may
  // hold it); a broken one (fenced, cut off from its replica, failed to
  // start) stops and starts again once its lease is renewed.
  void StopLapsedAndBroken(std::chrono::seconds ttl);
  // Each lease held renewed (a compare-and-set on the revision last
  // written), those renewed in *renewed; one someone else holds, or not
  // answered for a whole `ttl`, stops its partition.
  void RenewHeld(std::chrono::seconds ttl, std::set<uint32_t>* renewed, bool* trouble);
  // Who is live and who holds what. When a look fails, the last one
  // stands (a stale view can delay a claim or a release, never make two
  // holders: every write is a compare-and-set).
  void ReadView(std::vector<std::string>* nodes, std::vector<LeaseView>* leases, bool* trouble);
  // The plan's releases, renewals of leases the bucket says are this
  // node's (a restart), and claims, each partition claimed started here.
  void CarryOut(LeasePlan plan, const std::set<uint32_t>& renewed, std::vector<LeaseView>* leases);
  // The live nodes and each partition's owner, as GET /v1/cluster shows them.
  void ShowView(std::vector<std::string> nodes, const std::vector<LeaseView>& leases);
  // NATS could not be reached at step `what` (logged once until it can).
  void Unreachable(const char* what, const Status& st);
  void Observe();
  // The status of each partition `v` lacks, asked of its node; one that
  // does not answer keeps what it said last for a few seconds.
  void AskStatuses(std::vector<PartView>* v);
  // Answers the other nodes' asks for partition p's status (as the
  // observer last took it) until *out is destroyed.
  Status TellStatus(uint32_t p, std::unique_ptr<NatsClient::Listener>* out);
  // `keep_derived`: it starts again here (a broken one), so its copy keeps
  // what the sync derived; otherwise a sealed partition's copy keeps its
  // records only (DropIdleCopy), dropped by the janitor outside run_mu.
  void StopPartition(uint32_t p, bool release, bool keep_derived = false);
  // REQUIRES: run_mu held.
  void DeleteLeaseIfHeld(uint32_t p);
  // As StopPartition(p, true), on `releaser`; p is not claimed again here
  // until its lease is released.
  void ReleaseInBackground(uint32_t p);
  bool Releasing(uint32_t p) {
    std::lock_guard<std::mutex> lk(releasing_mu);
    return releasing.count(p) > 0;
  }
};

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

// Debug builds only: the integration suite makes a release slow, as a long
// catch-up or erasure under way makes a partition's stop.
void SlowReleaseForTests() {
#ifndef NDEBUG
  if (const char* ms = std::getenv("DFM_TEST_SLOW_RELEASE_MS"))
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(ms)));
#endif
}

void ClusterNode::Impl::ReleaseInBackground(uint32_t p) {
  // The lease stays held, and renewed by Tick, until the stop has ended:
  // nobody else runs the partition while this node may still write it.
  std::shared_ptr<Partition> part;
  if (auto it = running.find(p); it != running.end()) {
    part = std::move(it->second);
    running.erase(it);
  }
  {
    std::lock_guard<std::mutex> lk(releasing_mu);
    releasing.insert(p);
  }
  releaser->Post([this, p, part] {
    SlowReleaseForTests();
    if (part) {
      part->Stop();
      if (open_keys && janitor)
        janitor->Post([dir = PartitionDir(config->data_dir(), p)] { DropIdleCopy(dir); });
    }
    {
      std::lock_guard<std::mutex> run_lock(run_mu);
      DeleteLeaseIfHeld(p);
      lease_rev.erase(p);
      renewed_at.erase(p);
      std::lock_guard<std::mutex> view_lock(view_mu);
      if (p < owners.size() && owners[p] == node) owners[p].clear();  // until Tick looks again
    }
    std::lock_guard<std::mutex> lk(releasing_mu);
    releasing.erase(p);
  });
}

void ClusterNode::Impl::StopPartition(uint32_t p, bool release, bool keep_derived) {
  auto it = running.find(p);
  if (it != running.end()) {
    it->second->Stop();
    running.erase(it);
    if (open_keys && !keep_derived && janitor)
      janitor->Post([dir = PartitionDir(config->data_dir(), p)] { DropIdleCopy(dir); });
  }
  if (release) DeleteLeaseIfHeld(p);
  renewed_at.erase(p);
  lease_rev.erase(p);
}

void ClusterNode::Impl::DeleteLeaseIfHeld(uint32_t p) {
  // KvDelete is not conditional: only a lease surely still this node's
  // (renewed within half its time, NATS reachable) is deleted; another is
  // left to expire, since it may have lapsed and be someone else's now.
  auto renewed = renewed_at.find(p);
  const auto half = std::chrono::milliseconds(config->cluster().lease_ttl_s * 500);
  if (!lease_rev.count(p) || renewed == renewed_at.end() || !nats->connected() ||
      std::chrono::steady_clock::now() - renewed->second >= half)
    return;
  Status s = nats->KvDelete(LeaseKey(p));
  if (!s.ok()) Logger("cluster")->warn("event=lease_release_failed partition={} error=\"{}\"", p, s.ToString());
}

void ClusterNode::Impl::Tick() {
  std::lock_guard<std::mutex> run_lock(run_mu);
  const auto ttl = std::chrono::seconds(config->cluster().lease_ttl_s);
  StopLapsedAndBroken(ttl);
  if (!nats->connected()) return Unreachable("connect", Status::Unavailable("not connected"));
  // The leases held first, each a compare-and-set on the revision this
  // node last wrote: nothing slower (listing the bucket makes a consumer,
  // which a NATS election can hold up for seconds) comes before them.
  std::set<uint32_t> renewed;
  bool trouble = false;
  RenewHeld(ttl, &renewed, &trouble);
  Status s = nats->KvPut(NodeKey(node), std::to_string(SystemClock::Instance()->NowMicros()));
  if (!s.ok()) return Unreachable("heartbeat", s);
  if (winding_down.load()) return;  // Stop: leases renewed while the releases end, nothing else
  std::vector<std::string> nodes;
  std::vector<LeaseView> leases;
  ReadView(&nodes, &leases, &trouble);
  if (nats_trouble && !trouble) Logger("cluster")->info("event=coordination_resumed");
  nats_trouble = trouble;
  // A read may come from a replica that lags (the bucket's direct gets):
  // what this node holds it knows better.
  for (const auto& [p, rev] : lease_rev) leases[p] = {node, rev};
  {  // given up already: not this node's in the plan (its lease goes once stopped)
    std::lock_guard<std::mutex> lk(releasing_mu);
    for (uint32_t p : releasing) leases[p] = LeaseView();
  }
  CarryOut(PlanLeases(node, nodes, leases, !looked), renewed, &leases);
  if (!trouble) looked = true;
  ShowView(std::move(nodes), leases);
}

void ClusterNode::Impl::Unreachable(const char* what, const Status& st) {
  if (!nats_trouble)
    Logger("cluster")->warn("event=coordination_failed step={} error=\"{}\"", what, st.ToString());
  nats_trouble = true;
}

void ClusterNode::Impl::StopLapsedAndBroken(std::chrono::seconds ttl) {
  auto logger = Logger("cluster");
  const auto now = std::chrono::steady_clock::now();
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
    StopPartition(p, false, /*keep_derived=*/true);  // started again here, from its state
    lease_rev[p] = rev;  // still held: restarted below once renewed
    renewed_at[p] = at;
    restarts.fetch_add(1);
  }
}

void ClusterNode::Impl::RenewHeld(std::chrono::seconds ttl, std::set<uint32_t>* renewed,
                                  bool* trouble) {
  for (auto& [p, held_rev] : lease_rev) {
    uint64_t rev = 0;
    // The lease runs from when the renewal left at the earliest.
    const auto sent = std::chrono::steady_clock::now();
    Status s = nats->KvUpdate(LeaseKey(p), node, held_rev, &rev);
    if (!s.ok()) {
      // Someone else's now: stop at once. Not answered (NATS electing a
      // leader, a slow link): go on while the lease cannot have lapsed;
      // the log's fence stops any write after that anyway.
      auto r = renewed_at.find(p);
      if (s.code() == Status::Code::kAlreadyExists || r == renewed_at.end() ||
          std::chrono::steady_clock::now() - r->second >= ttl) {
        Logger("cluster")->warn("event=lease_lost partition={} error=\"{}\"", p, s.ToString());
        lease_losses.fetch_add(1);
        lapsed_now.push_back(p);
      } else {
        Unreachable("renew", s);
        *trouble = true;
      }
      continue;
    }
    held_rev = rev;
    renewed_at[p] = sent;
    renewed->insert(p);
    auto it = running.find(p);
    if (it != running.end()) it->second->set_lease_rev(rev);
  }
  for (uint32_t p : lapsed_now) StopPartition(p, false);
  lapsed_now.clear();
}

void ClusterNode::Impl::ReadView(std::vector<std::string>* nodes, std::vector<LeaseView>* leases,
                                 bool* trouble) {
  // The bucket's keys from its stream's info (a watch would make and
  // delete a consumer every tick: two proposals to JetStream's meta group
  // per node a second, a quarter of an idle cluster's NATS CPU); a node
  // that stopped deleted its key, which is listed still and reads absent.
  std::vector<std::string> keys, live_nodes;
  Status listed = nats->KvKeysLatest(&keys);
  for (size_t i = 0; listed.ok() && i < keys.size(); ++i) {
    if (keys[i].rfind("node.", 0) != 0) continue;
    NatsClient::KvEntry e;
    listed = nats->KvGet(keys[i], &e);
    if (listed.ok() && e.present) live_nodes.push_back(keys[i].substr(5));
  }
  if (listed.ok()) {
    last_nodes = std::move(live_nodes);
  } else {
    Unreachable("keys", listed);
    *trouble = true;
  }
  *nodes = last_nodes;
  if (std::find(nodes->begin(), nodes->end(), node) == nodes->end()) nodes->push_back(node);
  last_leases.resize(partitions);
  for (uint32_t p = 0; p < partitions; ++p) {
    NatsClient::KvEntry e;
    if (Status s = nats->KvGet(LeaseKey(p), &e); !s.ok()) {
      Unreachable("lease_read", s);
      *trouble = true;
      continue;
    }
    last_leases[p] = e.present ? LeaseView{e.value, e.rev} : LeaseView();
  }
  *leases = last_leases;
}

void ClusterNode::Impl::CarryOut(LeasePlan plan, const std::set<uint32_t>& renewed,
                                 std::vector<LeaseView>* leases) {
  for (uint32_t p : plan.release) {
    if (Releasing(p)) continue;  // given up already, its stop under way
    Logger("cluster")->info("event=partition_released partition={} reason=rebalance", p);
    ReleaseInBackground(p);
    (*leases)[p] = LeaseView();
  }
  for (uint32_t p : plan.renew) {
    if (std::find(plan.release.begin(), plan.release.end(), p) != plan.release.end()) continue;
    if (Releasing(p)) continue;  // run again here only once its stop has ended
    if (renewed.count(p)) {
      if (!running.count(p)) plan.claim.push_back(p);  // held, stopped (broken): run it again
      continue;
    }
    if (lease_rev.count(p)) continue;  // held, its renewal not answered: kept while it may be
    // The bucket says this node holds it (a restart of this node): renew, then run it.
    uint64_t rev = 0;
    const auto sent = std::chrono::steady_clock::now();
    if (!nats->KvUpdate(LeaseKey(p), node, (*leases)[p].rev, &rev).ok()) continue;
    lease_rev[p] = rev;
    renewed_at[p] = sent;
    if (!running.count(p)) plan.claim.push_back(p);
  }
  for (uint32_t p : plan.claim) {
    if (Releasing(p)) continue;
    uint64_t rev = lease_rev.count(p) ? lease_rev[p] : 0;
    if (rev == 0) {
      const auto sent = std::chrono::steady_clock::now();
      if (!nats->KvCreate(LeaseKey(p), node, &rev).ok()) continue;  // someone else was quicker
      lease_rev[p] = rev;
      renewed_at[p] = sent;
    }
    auto part = MakePartition(p, config, nats.get(), node, rev, open_keys, &ingest_state[p]);
    part->StartAsync(factory);
    takeovers.fetch_add(1);
    running[p] = std::move(part);
  }
}

void ClusterNode::Impl::ShowView(std::vector<std::string> nodes,
                                 const std::vector<LeaseView>& leases) {
  std::set<uint32_t> still_here;  // given up, still stopping: held and shown as this node's
  {
    std::lock_guard<std::mutex> rl(releasing_mu);
    still_here = releasing;
  }
  std::lock_guard<std::mutex> lk(view_mu);
  live = std::move(nodes);
  for (uint32_t p = 0; p < partitions; ++p)
    owners[p] = running.count(p) || still_here.count(p) ? node : leases[p].owner;
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
  const int replicas = static_cast<int>(cs.replicas);
  std::shared_ptr<CasStore> records;
  Status s = OpenRecordsStore(cs.nats_urls, im.node, NatsSecurityOf(cs), replicas, &records);
  if (!s.ok()) return s;
  SharedWithWork shared;
  shared.records = records;
  std::shared_ptr<StateMirror> mirror;
  if (!cs.state_key.empty()) {
    std::unique_ptr<StateMirror> m;
    s = StateMirror::Open(cs.nats_urls, im.node, NatsSecurityOf(cs), replicas, cs.state_key, &m);
    if (!s.ok()) return s;
    mirror = std::move(m);
    shared.replicate_state = [mirror](const std::string& tenant, std::string_view consumer,
                                      const std::vector<StateOp>& ops) { return mirror->Put(tenant, consumer, ops); };
    std::shared_ptr<CasStore> seal;
    s = OpenSealBucket(cs, im.node, &seal);
    if (!s.ok()) return s;
    im.open_keys = [seal, key = cs.state_key](uint32_t p, std::shared_ptr<KeyStore>* keys) {
      return OpenPartitionKeys(seal, key, p, keys);
    };
    DropIdleCopies(config.data_dir());  // left by a kill -9: this node runs none yet
  } else {
    Logger("cluster")->warn(
        "event=state_not_replicated reason=\"cluster.state_key is not set: OAuth grants and credit budgets stay "
        "on the node that wrote them, and personal data is not sealed (no erasure)\"");
  }
  im.factory = [&im, work = std::move(work), shared, mirror](uint32_t p, ServedLog at,
                                                             std::function<bool(const std::string&)> runs,
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
    Status st = work(*im.live_config.load(), log, std::move(runs), mine, &inner);
    std::unique_ptr<ReadRouter::Serving> serving;
    std::unique_ptr<NatsClient::Listener> status;
    if (st.ok()) {
      at.work = inner.get();  // owned by the ServedWork below, which stops serving first
      st = im.reads->Serve(p, at, &serving);
    }
    if (st.ok()) st = im.TellStatus(p, &status);
    if (!st.ok()) {
      if (inner) inner->Stop();
      return st;
    }
    *w = std::make_unique<ServedWork>(std::move(inner), std::move(serving), std::move(status));
    return Status::OK();
  };
  s = NatsClient::Connect(cs.nats_urls, "dfm " + im.node, NatsSecurityOf(cs), /*keep_trying=*/true, &im.nats);
  if (!s.ok()) return s;
  // The streams and the buckets: created by whichever node comes first.
  for (int attempt = 0;; ++attempt) {
    s = Status::OK();
    for (uint32_t p = 0; s.ok() && p < im.partitions; ++p) {
      s = im.nats->EnsureStream(InStream(p), InSubject(p), replicas, cs.dedup_window_s, cs.ingest_max_age_s);
      if (s.ok()) {  // made before, or by another setting: this one's
        Status u = im.nats->UpdateStreamLimits(InStream(p), cs.dedup_window_s, cs.ingest_max_age_s);
        if (!u.ok())
          Logger("cluster")->warn("event=ingest_stream_limits_kept stream={} error=\"{}\"", InStream(p), u.ToString());
      }
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
  im.reads = std::make_unique<ReadRouter>(im.nats.get(), im.partitions);
  ReadRouter* reads = im.reads.get();
  im.ingest = MakeIngestLog(im.nats.get(), im.local.get(), im.partitions, im.open_keys,
                            [reads](uint32_t p, const SeenAsk& ask, std::vector<Seen>* answer) {
                              return reads->AnswerSeenHere(p, ask, answer);
                            });
  im.janitor = std::make_unique<Worker>();
  im.releaser = std::make_unique<Worker>();
  im.view.resize(im.partitions);
  im.ingest_state = std::make_unique<IngestState[]>(im.partitions);
  im.owners.resize(im.partitions);
  Logger("cluster")->info("event=cluster_join node={} partitions={} replicas={} lease_ttl_s={}",
                          im.node, im.partitions, replicas, cs.lease_ttl_s);
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
