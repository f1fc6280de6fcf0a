// ClusterNode: one dfm node of a cluster on NATS JetStream
// (docs/scale-out.md).
//
// - Ingest: ingest_log() is the EventLog the HTTP front appends webhooks
//   to. An append is answered only once the draft is in the replicated
//   stream DFM_IN_<partition> (subject dfm.in.<partition>), de-duplicated
//   there by the webhook's idempotency key (Nats-Msg-Id).
// - Ownership: a coordinator thread heartbeats the node and keeps leases
//   (key-value bucket dfm_leases) on its share of the partitions
//   (leases.h). Only a lease holder runs a partition.
// - A partition it holds runs as on one node: its own RocksDB log (under
//   <data_dir>/partitions/p<N>), projections and sync actors, for the
//   tenants of that partition. Every group commit of that log is first
//   appended to the replicated stream DFM_LOG_<N> with the stream's
//   expected last sequence, so a node that lost the lease cannot extend
//   the log (it is fenced, stops the partition and catches up before it
//   may run it again). On taking a partition the node reads what it lacks
//   of DFM_LOG_<N> into its RocksDB, then pulls DFM_IN_<N>'s durable
//   consumer "in" and appends each webhook in stream order (acking after
//   the append is durable).
//
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/reads.h"
#include "config/config.h"
#include "storage/cas_store.h"
#include "storage/event_log.h"
#include "sync/decided_view.h"
#include "util/json.h"
#include "util/metrics.h"
#include "util/status.h"

namespace dfm {

// What runs on a partition's log while this node holds it (the sync
// runtime), made by the caller so that this room needs nothing above it.
class PartitionWork {
 public:
  virtual ~PartitionWork() = default;
  virtual void Reload(const Config& config) = 0;
  // Stops it (no new decisions or pushes); before the log closes.
  virtual void Stop() = 0;
  // Events of the log (whose head is `last_seq`) it has not yet taken in.
  virtual uint64_t Behind(uint64_t last_seq) const = 0;
  // Its families for GET /metrics, against the log's head `last_seq`.
  virtual void WriteMetrics(uint64_t last_seq, MetricsText* out) const = 0;
  // What the status page shows of it (its connectors, sync and consent
  // conflicts), encoded by the caller (console/cluster_status.h).
  virtual std::string StatusText(uint64_t last_seq) const = 0;
  // Answers `request` when it is one of the work's own (true; `reply`
  // called once, from any thread); false for any other.
  virtual bool Answer(const std::string& request, std::function<void(std::string)>* reply) {
    (void)request;
    (void)reply;
    return false;
  }
  // What its sync has decided (SyncRuntime::DecidedSource), asked from any
  // thread for as long as the function is kept; null when none runs.
  virtual std::function<DecidedView()> DecidedSource() const { return nullptr; }
};
// Starts the work on partition `p`'s `log`, sealed with `keys` (null: not
// sealed), for the tenants `runs` accepts.
using PartitionWorkFactory =
    std::function<Status(uint32_t p, ServedLog at, std::function<bool(const std::string& tenant)> runs,
                         std::unique_ptr<PartitionWork>* out)>;

// What every node shares with the work it runs: the records connectors
// create (the bucket DFM_RECORDS, cluster/records_store.h) and where their
// state goes for the next owner (DFM_STATE, cluster/state_mirror.h; null
// when `cluster.state_key` is not set); and the keys that seal the
// partition's log (DFM_SEAL, cluster/seal_keys.h; null likewise).
struct SharedWithWork {
  std::shared_ptr<CasStore> records;
  StateReplicator replicate_state;
  KeyStore* keys = nullptr;
  // The partition's flag, true once it is stopping: a start under way may
  // end early on it (ServedLog::stopping).
  const std::atomic<bool>* cancel = nullptr;
};
// The same factory, given also what the nodes share and the configuration
// in place now (the last reload's: a partition started after a reload runs
// what it put in place, which outlives the node).
using SharedWorkFactory = std::function<Status(
    const Config& config, EventLog* log, std::function<bool(const std::string& tenant)> runs,
    const SharedWithWork& shared, std::unique_ptr<PartitionWork>* out)>;

class ClusterNode {
 public:
  // Connects to NATS, creates the streams, the lease bucket and the
  // records bucket if missing, and starts the coordinator. REQUIRES:
  // config.cluster().enabled; `config` outlives the node.
  static Status Start(const Config& config, SharedWorkFactory work,
                      std::unique_ptr<ClusterNode>* out);
  ~ClusterNode();
  // Gives every partition up (stops its sync, releases its lease) and
  // disconnects. Idempotent.
  void Stop();
  // What the HTTP front appends to: AppendAsync publishes to DFM_IN_<p>; the
  // other methods read the node's own (empty) log.
  EventLog* ingest_log();
  // "cluster" for GET /v1/health's parts: the node, its NATS link, every
  // partition's owner and lag. Never blocks on NATS (a snapshot the
  // coordinator keeps).
  void AddHealthParts(JsonObject* parts) const;
  // dfm_cluster_* families for GET /metrics (docs/metrics.md), and the
  // sync's families of every partition running here (as the observer took
  // them, at most a second ago), each sample labelled with its partition.
  // Never waits on NATS or on a partition stopping.
  void WriteMetrics(MetricsText* out) const;
  // GET /metrics?scope=cluster (cluster/node_metrics.h): from now on the
  // observer sends what `own` answers (this node's GET /metrics) to every
  // node each second; ClusterMetrics() merges the last text of every node,
  // this one's included. `own` runs on the observer thread with no lock of
  // the node's held. Call once.
  void ShareMetrics(std::function<std::string()> own);
  std::string ClusterMetrics() const;
  // Whether this node mails the cluster's alerts (docs/alerts.md): it
  // holds partition 0's lease, or no node does and it is the first live
  // node by name (as the coordinator last saw).
  bool MailsAlerts() const;
  // This node's name (cluster.node_id, or the host name): its `node` label
  // in the cluster's metrics.
  const std::string& id() const;
  // A configuration reload for the partitions running here.
  void Reload(const Config& config);
  // Reads from any node (cluster/reads.h): `answerer` answers those asked
  // of the partitions running here (the console, over the partition's
  // log); AskRead asks the node running `tenant`'s partition. `done` runs
  // on a node thread. A partition stopping waits for its answers under
  // way, Stop() for the asks.
  void ServeReads(ReadAnswerer answerer);
  // Every partition's owner and status (PartitionWork::StatusText) as this
  // node last heard them, at most about a second old: from the work of
  // those running here, and asked of the others' nodes (subject
  // `dfm.status.<p>`). `status` is empty when none came: no node runs the
  // partition, its node is `starting` it, or did not answer. Never blocks
  // on NATS.
  struct PartitionStatusText {
    uint32_t partition = 0;
    std::string owner, status;
    bool starting = false;
  };
  std::vector<PartitionStatusText> PartitionStatuses() const;
  // The nodes whose heartbeat the coordinator last saw, this one included
  // once it has heartbeaten. Never blocks on NATS.
  std::vector<std::string> LiveNodes() const;
  // `timeout_ms` 0: a read's (8 s).
  void AskRead(const std::string& tenant, std::string request,
               std::function<void(Status, std::string answer)> done, int64_t timeout_ms = 0);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfm
