// ClusterNode's coordinator (cluster/node_internal.h): every third of
// `lease_ttl_s`, the leases held renewed, the view of the cluster read,
// and the partitions claimed, started, stopped and released as PlanLeases
// says (docs/scale-out.md, "Partitions: one writer per contact").
#include <pthread.h>

#include <cstdlib>

#include "cluster/names.h"
#include "cluster/node_internal.h"
#include "util/clock.h"
#include "util/logging.h"

namespace dfm {

using namespace cluster_names;

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
  if (!s.ok())
    Logger("cluster")->warn("event=lease_release_failed partition={} error=\"{}\"", p,
                            s.ToString());
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

}  // namespace dfm
