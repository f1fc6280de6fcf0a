// ClusterNode's insides (cluster/node.h), shared by node.cc (start,
// stop, the observer, health and metrics) and node_leases.cc (the
// coordinator: leases, the partitions started and stopped here).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/ingest_log.h"
#include "cluster/leases.h"
#include "cluster/names.h"
#include "cluster/nats_client.h"
#include "cluster/node.h"
#include "cluster/node_metrics.h"
#include "cluster/partition.h"
#include "cluster/reads.h"
#include "cluster/state_mirror.h"
#include "storage/rocksdb_event_log.h"
#include "util/worker.h"

namespace dfm {

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
    std::string metrics;    // of a partition running here: its sync's families (WriteMetrics)
    std::string status;     // its work's StatusText, here or as its node told; "" unknown
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
  std::shared_ptr<ClusterMetricsView> metrics_view = std::make_shared<ClusterMetricsView>(
      cluster_names::kMetricsStaleUs, cluster_names::kMetricsForgetUs);
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
  // Start's steps. The records store, and with cluster.state_key the
  // state mirror and the sealing keys' bucket.
  Status OpenShared(SharedWithWork* shared, std::shared_ptr<StateMirror>* mirror);
  // `factory`: a partition's work made by `work`, its connectors' state
  // restored first, its reads served and its status told.
  void MakeFactory(SharedWorkFactory work, SharedWithWork shared,
                   std::shared_ptr<StateMirror> mirror);
  // Every partition's streams and the lease bucket, made by whichever node
  // comes first (tried for 30 s while the NATS cluster forms).
  Status EnsureStreams();
  // The node's own log (the ingest's local checks), the read router, the
  // ingest log and the workers.
  Status OpenLocal();

  bool Releasing(uint32_t p) {
    std::lock_guard<std::mutex> lk(releasing_mu);
    return releasing.count(p) > 0;
  }
};

}  // namespace dfm
