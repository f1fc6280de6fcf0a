// PullPartitions: a copy of every partition's log from the cluster's
// replicated streams (DFM_LOG_<N>) into local RocksDB logs, one data
// directory per partition (<into>/p<NNN>), so that `dfm log verify`,
// `dfm events`, `dfm trace`, `dfm replay` and `dfm audit` run on them as on
// a single node's log (docs/scale-out.md, "Tools"). Pulling again adds only
// what is new. Each record is checked to follow the one before it in the
// chain as it is added.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "storage/key_store.h"
#include "util/status.h"

namespace dfm {

// A run of frames one node wrote under one lease revision.
struct WriterRun {
  std::string writer;
  uint64_t lease_rev = 0;
  uint64_t first_seq = 0, last_seq = 0;  // event sequence numbers
};

struct PulledPartition {
  uint32_t partition = 0;
  std::string dir;
  uint64_t events = 0;  // in the copy after the pull
  std::vector<WriterRun> writers;  // of the frames read by this pull, in order
  // Empty when every frame came from a lease revision no older than the
  // one before it: no node wrote while another held the partition.
  std::string overlap;
};

Status PullPartitions(const ClusterSettings& cluster, const std::string& into,
                      std::vector<PulledPartition>* out);

// Each copy says which partition it is in <dir>/PARTITION (grammar,
// version 1): "1 " decimal-partition LF. False when `dir` is no copy.
bool PulledPartitionOf(const std::string& dir, uint32_t* p);

// The keys that open a copy's sealed payloads: its partition's in DFM_SEAL
// (cluster/seal_keys.h), asked of the cluster. NotFound when `dir` is no
// copy or `cluster` has no state_key (the payloads then stay sealed).
Status OpenPulledKeys(const ClusterSettings& cluster, const std::string& dir, std::shared_ptr<KeyStore>* out);

}  // namespace dfm
