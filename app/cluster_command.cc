#include "app/cluster_command.h"

#include <ostream>

#include "cluster/pull.h"
#include "cluster/wire.h"
#include "replay-tools/projection_commands.h"
#include "util/json.h"

namespace dfm {

int RunClusterPull(const Config& config, const std::string& into, bool json, std::ostream& out,
                   std::ostream& err) {
  if (config.cluster().nats_urls.empty()) {
    err << "dfm cluster pull: cluster.nats_urls is not set\n";
    return 2;
  }
  std::vector<PulledPartition> parts;
  Status s = PullPartitions(config.cluster(), into, &parts);
  if (!s.ok()) {
    err << "dfm cluster pull: " << s.ToString() << "\n";
    return 2;
  }
  int rc = 0;
  for (const auto& p : parts) {
    if (!p.overlap.empty()) rc = 1;
    if (json) {
      JsonArray writers;
      for (const auto& w : p.writers)
        writers.Raw(JsonObject()
                        .Str("writer", w.writer)
                        .UInt("lease_rev", w.lease_rev)
                        .UInt("first_seq", w.first_seq)
                        .UInt("last_seq", w.last_seq)
                        .Finish());
      JsonObject o;
      o.UInt("partition", p.partition).Str("dir", p.dir).UInt("events", p.events);
      o.Raw("writers", writers.Finish());
      if (!p.overlap.empty()) o.Str("overlap", p.overlap);
      out << o.Finish() << "\n";
      continue;
    }
    out << "partition " << p.partition << ": " << p.events << " events in " << p.dir;
    for (const auto& w : p.writers)
      out << "\n  " << w.first_seq << ".." << w.last_seq << " written by " << w.writer
          << " (lease " << w.lease_rev << ")";
    if (!p.overlap.empty()) out << "\n  TWO WRITERS: " << p.overlap;
    out << "\n";
  }
  return rc;
}

Status PullTenantLog(const Config& config, const std::string& tenant, std::string* dir) {
  const uint32_t p = PartitionOf(tenant, static_cast<uint32_t>(config.cluster().partitions));
  std::vector<PulledPartition> parts;
  Status s = PullPartitions(config.cluster(), config.data_dir() + "/pulled", &parts);
  if (!s.ok()) return s;
  for (const auto& part : parts) {
    if (part.partition != p) continue;
    *dir = part.dir;
    return Status::OK();
  }
  return Status::NotFound("no copy of partition " + std::to_string(p));
}

Status OpenFoldedTenantCopy(const Config& config, const std::string& tenant, std::string* dir,
                            std::unique_ptr<RocksDbEventLog>* log) {
  Status s = PullTenantLog(config, tenant, dir);
  if (!s.ok()) return s;
  RocksDbLogOptions o;
  o.path = *dir;
  s = OpenPulledKeys(config.cluster(), *dir, &o.keys);
  if (!s.ok() && !s.IsNotFound()) return s;
  s = RocksDbEventLog::Open(o, log);
  if (!s.ok()) return s;
  RebuildReport r;
  s = RebuildProjections(log->get(), "", nullptr, &r);
  if (!s.ok()) (void)(*log)->DropDerived({std::string(kReplicaCheckpoint)});  // none left half folded
  return s;
}

int RunClusterPartition(const Config& config, const std::string& tenant, std::ostream& out) {
  out << PartitionOf(tenant, static_cast<uint32_t>(config.cluster().partitions)) << "\n";
  return 0;
}

}  // namespace dfm
