#include "storage/rocksdb_log_impl.h"

namespace dfm {

using namespace rocksdb_log;  // NOLINT: this file's own insides

Status RocksDbEventLog::Unseal(Event* e) const {
  return impl_->sealer ? impl_->sealer->Open(e) : Status::OK();
}

// DecodeRecord, then Unseal, with no copy of a sealed payload's ciphertext.
Status RocksDbEventLog::DecodeOpened(std::string_view record, Event* e) const {
  if (!impl_->sealer) return DecodeRecord(record, e);
  std::string_view payload;
  Status s = DecodeRecord(record, e, &payload);
  return s.ok() ? impl_->sealer->OpenFrom(payload, e) : s;
}

std::string RocksDbEventLog::SubjectHashKey() const {
  return impl_->options.keys ? impl_->options.keys->HashKey() : std::string();
}

uint64_t RocksDbEventLog::LastSequence() const { return impl_->committed.load(); }

uint64_t RocksDbEventLog::WaitForSequence(uint64_t seq, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lk(impl_->mu);
  impl_->commit_cv.wait_for(lk, timeout,
                            [&] { return impl_->committed.load() >= seq || impl_->closed; });
  return impl_->committed.load();
}

Status RocksDbEventLog::ScanRecords(
    uint64_t from, const std::function<bool(uint64_t, std::string_view)>& fn) const {
  std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db) return Status::Unavailable("event log is being reopened after a write failure");
  uint64_t last = impl_->committed.load();
  if (from > last) return Status::OK();
  std::string lower = EncodeFixed64BE(from);
  std::string upper = EncodeFixed64BE(last + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  // Read() and every scan by sequence come here (ReadStream's Gets do
  // not). A long scan (a rebuild, a replay, a catch-up) reads each block
  // once, in order: caching them would only evict the blocks that point
  // lookups reuse (~9% faster rebuilds, bench/README.md (f)). A live tail
  // reads recent events, mostly from the memtable, which this does not
  // touch; a one-event Read of an old event is not cached either.
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf[kEvents]));
  // A scan that goes on past kLongScan records is read on by an iterator
  // that reads 512 KiB ahead in one call (RocksDB's own readahead only
  // hints the kernel and still makes a read call per block): the scan of
  // a whole log ~25% faster (bench/README.md (f)). A read of a few events
  // reads no more than it needs.
  constexpr uint64_t kLongScan = 1024;
  uint64_t visited = 0;
  for (it->Seek(lower); it->Valid();) {
    if (it->key().size() != 8) return Status::Corruption("bad key in events");
    const uint64_t seq = DecodeFixed64BE(it->key().data());
    if (!fn(seq, std::string_view(it->value().data(), it->value().size()))) break;
    if (++visited == kLongScan && seq < last) {
      if (!it->status().ok()) break;
      ro.readahead_size = 512 << 10;
      it.reset(impl_->db->NewIterator(ro, impl_->cf[kEvents]));
      it->Seek(EncodeFixed64BE(seq + 1));
    } else {
      it->Next();
    }
  }
  return FromRocks(it->status());
}

Status RocksDbEventLog::Read(uint64_t from, size_t max, std::vector<Event>* out) const {
  if (max == 0) return Status::OK();
  Status decode_status;
  size_t n = 0;
  Status s = ScanRecords(from, [&](uint64_t, std::string_view rec) {
    Event e;
    decode_status = DecodeOpened(rec, &e);
    if (!decode_status.ok()) return false;
    out->push_back(std::move(e));
    return ++n < max;
  });
  return s.ok() ? decode_status : s;
}

Status RocksDbEventLog::ReadStream(std::string_view tenant, std::string_view stream, uint64_t from,
                                   size_t max, std::vector<Event>* out) const {
  std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db) return Status::Unavailable("event log is being reopened after a write failure");
  std::string prefix = StreamPrefix(tenant, stream);
  PrefixIterator it(impl_->db.get(), impl_->cf[kStreams], prefix);
  uint64_t last = impl_->committed.load();
  size_t n = 0;
  for (it->Seek(prefix + EncodeFixed64BE(from)); it->Valid() && n < max; it->Next()) {
    rocksdb::Slice k = it->key();
    if (k.size() != prefix.size() + 8) continue;  // a longer tenant/stream name sharing bytes
    uint64_t seq = DecodeFixed64BE(k.data() + prefix.size());
    if (seq > last) break;
    std::string rec;
    rocksdb::Status g =
        impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[kEvents], EncodeFixed64BE(seq), &rec);
    if (!g.ok()) return FromRocks(g);
    Event e;
    Status d = DecodeOpened(rec, &e);
    if (!d.ok()) return d;
    out->push_back(std::move(e));
    ++n;
  }
  return FromRocks(it->status());
}

Status RocksDbEventLog::LookupIdempotency(std::string_view tenant, std::string_view system,
                                          std::string_view key, uint64_t* seq) const {
  std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db) return Status::Unavailable("event log is being reopened after a write failure");
  std::string v;
  rocksdb::Status g = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[kIdempotency],
                                     IdempotencyIndexKey(tenant, system, key), &v);
  if (!g.ok()) return FromRocks(g);
  if (v.size() != 24) return Status::Corruption("bad idempotency value");
  *seq = DecodeFixed64BE(v.data());
  return Status::OK();
}

Status RocksDbEventLog::LookupEventId(const EventId& id, uint64_t* seq) const {
  std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db) return Status::Unavailable("event log is being reopened after a write failure");
  std::string v;
  rocksdb::Status g = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[kEventIds],
                                     rocksdb::Slice(id.AsBytes().data(), 16), &v);
  if (!g.ok()) return FromRocks(g);
  if (v.size() != 8) return Status::Corruption("bad event id value");
  *seq = DecodeFixed64BE(v.data());
  return Status::OK();
}

Status RocksDbEventLog::Health() const {
  if (impl_->options.read_only) return Status::Unavailable("event log opened read-only");
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    if (impl_->closed) return Status::Unavailable("event log is closed");
  }
  if (!impl_->healthy.load()) {
    return Status::Unavailable("last write failed: " + impl_->LastError() + "; reopening");
  }
  const uint64_t free_bytes = impl_->free_bytes.load();
  if (impl_->options.min_free_bytes > 0 && free_bytes < impl_->options.min_free_bytes) {
    return Status::ResourceExhausted("disk nearly full: " + std::to_string(free_bytes >> 20) +
                                     " MiB free for " + impl_->options.path + ", below the " +
                                     std::to_string(impl_->options.min_free_bytes >> 20) +
                                     " MiB wanted");
  }
  return Status::OK();
}

RocksDbEventLog::Stats RocksDbEventLog::GetStats() const {
  Stats s;
  s.group_commits = impl_->stat_commits.load();
  if (impl_->wal_trash) {
    s.wal_trash_bytes = impl_->wal_trash->BacklogBytes();
    s.wals_deleted_whole = impl_->wal_trash->DeletedWhole();
  }
  s.events_appended = impl_->stat_events.load();
  s.duplicates = impl_->stat_dups.load();
  s.failed_commits = impl_->stat_failed.load();
  s.index_refused = impl_->stat_index_refused.load();
  s.slow_commits = impl_->stat_slow.load();
  s.slowest_commit_us = impl_->stat_slowest_us.load();
  s.crc32c_hardware = Crc32cServesRocksDb() && Crc32cHardware() ? 1 : 0;
  return s;
}

std::vector<EventLog::Counter> RocksDbEventLog::Counters() const {
  const Stats st = GetStats();
  return {{"group_commits", st.group_commits},
          {"events_appended", st.events_appended},
          {"failed_commits", st.failed_commits},
          {"index_refused", st.index_refused},
          {"slow_commits", st.slow_commits},
          {"slowest_commit_us", st.slowest_commit_us},
          {"wal_trash_bytes", st.wal_trash_bytes},
          {"wals_deleted_whole", st.wals_deleted_whole},
          {"crc32c_hardware", st.crc32c_hardware},
          {"high_water_seq", impl_->high_water_written.load()}};
}

void RocksDbEventLog::WriteMetrics(MetricsText* out) const {
  const Stats st = GetStats();
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  out->Family("dfm_event_log_last_seq", "gauge", "The sequence number of the log's last event.")
      .Sample({}, d(LastSequence()));
  out->Family("dfm_event_log_events_appended_total", "counter",
              "Events appended since the service started.")
      .Sample({}, d(st.events_appended));
  out->Family("dfm_event_log_duplicates_total", "counter",
              "Appends that were re-deliveries of an event already in the log.")
      .Sample({}, d(st.duplicates));
  out->Family("dfm_event_log_failed_commits_total", "counter", "Group commits whose write failed.")
      .Sample({}, d(st.failed_commits));
  out->Family("dfm_event_log_index_refused_total", "counter",
              "Appends refused because their idempotency key could not be looked up.")
      .Sample({}, d(st.index_refused));
  out->Family("dfm_event_log_commit_duration_seconds", "histogram",
              "Each group commit's synced write (RocksDB write with its WAL sync).")
      .Histo({}, impl_->commit_us.Read(), 1e-6);
  out->Family("dfm_event_log_commit_events", "histogram", "Events in each group commit.")
      .Histo({}, impl_->commit_events.Read(), 1);
  out->Family("dfm_event_log_wal_trash_bytes", "gauge", "Obsolete WAL bytes still being cut away.")
      .Sample({}, d(st.wal_trash_bytes));
  uint64_t sst = 0, wal = 0, mem = 0;
  {
    std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
    if (impl_->db) {
      impl_->db->GetAggregatedIntProperty(rocksdb::DB::Properties::kTotalSstFilesSize, &sst);
      rocksdb::VectorLogPtr wals;
      if (impl_->db->GetSortedWalFiles(wals).ok()) {
        for (const auto& w : wals) wal += w->SizeFileBytes();
      }
      impl_->db->GetAggregatedIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &mem);
    }
  }
  out->Family("dfm_event_log_disk_bytes", "gauge",
              "Bytes of the log's files on disk: table files and live WAL files.")
      .Sample({{"kind", "sst"}}, d(sst))
      .Sample({{"kind", "wal"}}, d(wal));
  out->Family("dfm_event_log_memtable_bytes", "gauge", "Bytes in RocksDB's memtables.")
      .Sample({}, d(mem));
  out->Family("dfm_event_log_writable", "gauge", "1 while the log accepts writes.")
      .Sample({}, Health().IsUnavailable() ? 0 : 1);
  const uint64_t free_bytes = impl_->free_bytes.load();
  if (impl_->options.min_free_bytes > 0 && free_bytes != UINT64_MAX) {
    out->Family("dfm_storage_free_bytes", "gauge",
                "Free bytes on the data directory's file system.")
        .Sample({}, d(free_bytes));
    out->Family("dfm_storage_min_free_bytes", "gauge",
                "storage.min_free_mb in bytes: below it the service is not ready.")
        .Sample({}, d(impl_->options.min_free_bytes));
  }
}

}  // namespace dfm
