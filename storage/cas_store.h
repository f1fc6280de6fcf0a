// CasStore: a small key-value store with compare-and-set, for state that
// everyone sharing it must agree on: the vendor records a creation is
// single-flight over (connectors/common/vendor_records.h). Two kinds: one
// process's event log (NewLogCasStore below), and a cluster's NATS
// key-value bucket (cluster/records_store.h), shared by every node.
//
// Keys are made of [A-Za-z0-9_=-] and '.', at most 200 bytes (NATS's key
// rules). Every method may be called from any thread; each call is atomic
// against every other user of the store.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/event_log.h"
#include "util/status.h"

namespace dfm {

class CasStore {
 public:
  struct Entry {
    bool present = false;  // false: never written (or deleted)
    std::string value;
    uint64_t rev = 0;  // changes at every write of the key
  };
  virtual ~CasStore() = default;
  // The key's value and revision; OK and !present when it has none. May
  // answer from a copy that lags behind writes others had acknowledged (a
  // cluster's bucket answers reads from any of its replicas).
  virtual Status Get(const std::string& key, Entry* e) = 0;
  // As Get, but sees every write acknowledged before the call (a cluster's
  // bucket: asked of its leader). For the reads whose "absent" is acted
  // on. Stores whose Get never lags need not override it.
  virtual Status GetLatest(const std::string& key, Entry* e) { return Get(key, e); }
  // Writes only when the key has no value: AlreadyExists otherwise.
  virtual Status Create(const std::string& key, const std::string& value) = 0;
  // Writes only when the key's revision is still `rev`: AlreadyExists
  // otherwise (someone wrote it since).
  virtual Status Update(const std::string& key, const std::string& value, uint64_t rev) = 0;
  // Every key that has a value; a store may list keys deleted too (Get
  // reads them absent).
  virtual Status Keys(std::vector<std::string>* keys) = 0;
};

// Cluster mode: writes a tenant's consumer state `ops` (state the log
// cannot give back: an OAuth grant, a credit budget) where every node that
// may run the tenant next finds it, before it returns
// (cluster/state_mirror.h). Null on a single node.
using StateReplicator =
    std::function<Status(const std::string& tenant, std::string_view consumer, const std::vector<StateOp>& ops)>;

// Over `log`'s consumer state `consumer`, every write durable before it
// returns (EventLog::CommitConsumerDurable). Atomic within this process,
// which is the only writer of the log. Stored value (grammar, version 1):
//   "1 " <revision, decimal> " " <value>
// REQUIRES: `log` outlives the store.
std::unique_ptr<CasStore> NewLogCasStore(EventLog* log, std::string consumer);

}  // namespace dfm
