// Partition: one partition of the cluster while this node holds its lease
// (docs/scale-out.md). It runs as a single node runs its log: its own
// RocksDB log under <data_dir>/partitions/p<N>, whose every group commit
// goes first to DFM_LOG_<N> (expecting the stream to end where this node
// last saw it: a node that lost the lease is fenced), and the caller's work
// (the sync) for the partition's tenants. Its log is sealed with the
// partition's keys when it has them. It takes its webhooks from
// DFM_IN_<N> strictly in stream order and acks them once durable.
//
// Thread-safety: the coordinator calls everything but log_seq() and
// sync_behind(), which its observer calls while started(), under the same
// lock that Stop() is called under.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "cluster/nats_client.h"
#include "cluster/node.h"
#include "cluster/seal_keys.h"
#include "config/config.h"

namespace dfm {

class Partition {
 public:
  virtual ~Partition() = default;
  // Reads what the local copy lacks of the replica, starts the work, then
  // takes webhooks; on a thread of its own, so that the coordinator goes on
  // renewing leases. A failure marks it broken(); a Stop() under way makes
  // it give up at its next step (neither started() nor broken()).
  virtual void StartAsync(const PartitionWorkFactory& factory) = 0;
  virtual bool started() const = 0;
  // Fenced, cut off from its replica, or failed to start: to be stopped
  // and, while its lease holds, started again from the replica.
  virtual bool broken() const = 0;
  // Ends a start under way (at its next step: between two replica frames,
  // or before or after the work's start, which it waits for); stops taking
  // webhooks, the work, the log.
  virtual void Stop() = 0;
  // REQUIRES: started().
  virtual uint64_t log_seq() const = 0;
  virtual uint64_t sync_behind() const = 0;
  // REQUIRES: started(). The log's and the work's GET /metrics families.
  virtual void WriteMetrics(MetricsText* out) const = 0;
  // REQUIRES: started(). The work's status (PartitionWork::StatusText).
  virtual std::string StatusText() const = 0;
  // The lease revision its frames carry from now on.
  virtual void set_lease_rev(uint64_t rev) = 0;
  virtual void Reload(const Config& config) = 0;
};

// Where this node keeps its copy of partition `p`.
std::string PartitionDir(const std::string& data_dir, uint32_t p);
// A copy of a sealed partition this node does not run keeps its records
// and nothing derived from them (RocksDbEventLog::DropDerived): the one at
// `dir` (not opened if the partition runs here again: its lock says so),
// or every one under <data_dir>/partitions (at the node's start). Logged.
void DropIdleCopy(const std::string& dir);
void DropIdleCopies(const std::string& data_dir);

// What a node keeps of a partition's ingest across the partition's
// restarts on it.
struct IngestState {
  // Its webhooks skipped as never readable (dfm_cluster_ingest_lost_total).
  std::atomic<uint64_t> lost{0};
  // 1 while its ingest waits for a front key (dfm_cluster_ingest_waiting_key).
  std::atomic<int> waiting_key{0};
  // By key block (one front's SharedKeyStore::kKeysPerBlock keys): when its
  // keys began to be answered missing here and when last (steady clock,
  // µs), and whether it was given up (WaitForKey). Ingest thread only.
  struct MissingBlock {
    int64_t first_us = 0, last_us = 0;
    bool gone = false;
  };
  std::mutex mu;
  std::map<uint64_t, MissingBlock> missing_blocks;
};

std::unique_ptr<Partition> MakePartition(uint32_t p, const Config* config, NatsClient* nats,
                                         std::string node, uint64_t lease_rev,
                                         PartitionKeysOpener keys, IngestState* ingest);

}  // namespace dfm
