#include "cluster/pull.h"

#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>

#include "cluster/nats_client.h"
#include "cluster/records_store.h"
#include "cluster/seal_keys.h"
#include "cluster/security.h"
#include "cluster/wire.h"
#include "events/codec.h"
#include "storage/durable_file.h"
#include "storage/rocksdb_event_log.h"

namespace dfm {

Status PullPartitions(const ClusterSettings& cluster, const std::string& into,
                      std::vector<PulledPartition>* out) {
  std::unique_ptr<NatsClient> nats;
  Status s = NatsClient::Connect(cluster.nats_urls, "dfm cluster pull", NatsSecurityOf(cluster), /*keep_trying=*/false, &nats);
  if (!s.ok()) return s;
  for (uint32_t p = 0; p < static_cast<uint32_t>(cluster.partitions); ++p) {
    PulledPartition pp;
    pp.partition = p;
    char name[32];
    snprintf(name, sizeof name, "p%03u", p);
    pp.dir = (std::filesystem::path(into) / name).string();
    std::error_code ec;
    std::filesystem::create_directories(pp.dir, ec);
    s = ReplaceFileDurably(pp.dir + "/PARTITION", "1 " + std::to_string(p) + "\n");
    if (!s.ok()) return s;
    RocksDbLogOptions opts;
    opts.path = pp.dir;
    std::unique_ptr<RocksDbEventLog> log;
    s = RocksDbEventLog::Open(opts, &log);
    if (!s.ok()) return s;
    const std::string stream = "DFM_LOG_" + std::to_string(p);
    uint64_t pos = 0, last = 0;
    s = log->ReadCheckpoint(kReplicaCheckpoint, &pos);
    if (s.ok()) s = nats->LastSeq(stream, &last);
    for (uint64_t seq = pos + 1; s.ok() && seq <= last; ++seq) {
      std::string frame;
      s = nats->GetMsg(stream, seq, &frame);
      LogChunk c;
      if (s.ok()) s = DecodeChunk(frame, &c);
      if (!s.ok() || c.records.empty()) continue;
      Event first, final_event;
      if (!DecodeRecord(c.records.front().record, &first).ok() ||
          !DecodeRecord(c.records.back().record, &final_event).ok()) {
        s = Status::Corruption(stream + " #" + std::to_string(seq) + ": a record does not decode");
        break;
      }
      if (!pp.writers.empty() && c.lease_rev < pp.writers.back().lease_rev && pp.overlap.empty())
        pp.overlap = c.writer + " wrote events " + std::to_string(first.seq) + ".. under lease " +
                     std::to_string(c.lease_rev) + " after " + pp.writers.back().writer +
                     " held lease " + std::to_string(pp.writers.back().lease_rev);
      if (pp.writers.empty() || pp.writers.back().writer != c.writer ||
          pp.writers.back().lease_rev != c.lease_rev) {
        pp.writers.push_back({c.writer, c.lease_rev, first.seq, final_event.seq});
      } else {
        pp.writers.back().last_seq = final_event.seq;
      }
      s = log->ImportRecords(c.records, seq);
    }
    pp.events = log->LastSequence();
    log->Close();
    if (!s.ok()) return Status::IOError("partition " + std::to_string(p) + ": " + s.ToString());
    out->push_back(std::move(pp));
  }
  return Status::OK();
}

bool PulledPartitionOf(const std::string& dir, uint32_t* p) {
  std::ifstream in(dir + "/PARTITION");
  std::string version;
  long long n = -1;
  if (!(in >> version >> n) || version != "1" || n < 0 || n > UINT32_MAX) return false;
  *p = static_cast<uint32_t>(n);
  return true;
}

Status OpenPulledKeys(const ClusterSettings& cluster, const std::string& dir, std::shared_ptr<KeyStore>* out) {
  uint32_t p = 0;
  if (!PulledPartitionOf(dir, &p)) return Status::NotFound(dir + " is no copy of a partition");
  if (cluster.state_key.empty()) return Status::NotFound("cluster.state_key is not set");
  std::shared_ptr<CasStore> seal;
  Status s = OpenSealBucket(cluster, "tool", &seal);
  if (!s.ok()) return s;
  return OpenPartitionKeys(seal, cluster.state_key, p, out);
}

}  // namespace dfm
