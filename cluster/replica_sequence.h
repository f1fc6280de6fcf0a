// ReplicaSequence: the log sequence numbers a partition has handed to its
// replica (DFM_LOG_<p>), each to be handed on at most once.
//
// A group commit's numbers are planned, the replica takes its records, and
// only then are they written to the local RocksDB (storage/
// rocksdb_event_log.h, RocksDbLogOptions::replicate). A local write that
// fails after the replica took them gives the numbers back: the next
// commit plans them again, with other records. Handed on again, they would
// put two records under one number in DFM_LOG_<p>, and every other node's
// catch-up would refuse the stream (the partition could not fail over).
// So the partition refuses such a commit and is started again from the
// replica, which holds the first records under those numbers.
//
// Not thread-safe: the log's writer thread (the replicate hook) only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "util/status.h"

namespace dfm {

class ReplicaSequence {
 public:
  // OK when no record from `first` on was handed on before.
  Status CheckFirst(uint64_t first) const {
    if (first > through_) return Status::OK();
    return Status::Unavailable("the replica already holds records " + std::to_string(first) + ".." +
                               std::to_string(through_) +
                               " that the local log failed to write: start again from the replica");
  }
  // The replica took the records up to `last`.
  void Took(uint64_t last) { through_ = std::max(through_, last); }

 private:
  uint64_t through_ = 0;
};

}  // namespace dfm
