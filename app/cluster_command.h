// `dfm cluster`: the tools' side of cluster mode (docs/scale-out.md).
//
//   dfm cluster pull --into DIR [--json]   every partition's log from NATS
//                                         into DIR/p<NNN> (a data directory
//                                         each: the log and replay tools
//                                         take it with -d)
//   dfm cluster partition TENANT          the partition a tenant lives in
#pragma once

#include <iosfwd>
#include <memory>
#include <string>

#include "config/config.h"
#include "storage/rocksdb_event_log.h"
#include "util/status.h"

namespace dfm {

// 0 after a pull in which no partition was written by two nodes at once
// (each partition's events, writers and lease revisions are printed); 1
// when one was; 2 on an error (NATS unreachable, a chain that breaks).
int RunClusterPull(const Config& config, const std::string& into, bool json, std::ostream& out,
                   std::ostream& err);

int RunClusterPartition(const Config& config, const std::string& tenant, std::ostream& out);

// The replay tools' log in cluster mode (ReplayTools::SetClusterLogs):
// every partition pulled into <data_dir>/pulled (again: only what is new),
// *dir the copy of `tenant`'s.
Status PullTenantLog(const Config& config, const std::string& tenant, std::string* dir);

// The same copy opened with its partition's keys and every projection
// folded again over it, for the tools that read projections (dfm
// reconcile): a fold of the whole partition. *dir: where it is.
Status OpenFoldedTenantCopy(const Config& config, const std::string& tenant, std::string* dir,
                            std::unique_ptr<RocksDbEventLog>* log);

}  // namespace dfm
