// RocksDbEventLog's writes (storage/rocksdb_event_log.h): the writer
// thread's group commits of appends, and a replica's import of records.
#include "storage/rocksdb_log_impl.h"

namespace dfm {

using namespace rocksdb_log;  // NOLINT: this file's own insides

namespace {

// The biggest group commit buffer kept for the next (commit_rows).
constexpr size_t kMaxKeptRows = size_t{16} << 20;

// A record's rows in one write: the record by its sequence number, its
// stream's index row, its event id's, and its idempotency key's (when it
// has one).
void PutRecordRows(rocksdb::WriteBatch* wb, const std::vector<rocksdb::ColumnFamilyHandle*>& cf,
                   uint64_t seq, std::string_view record, std::string_view tenant,
                   std::string_view stream, const EventId& id, std::string_view idempotency_key) {
  const std::string seq_key = EncodeFixed64BE(seq);
  wb->Put(cf[kEvents], seq_key, rocksdb::Slice(record.data(), record.size()));
  std::string stream_key = StreamPrefix(tenant, stream);
  stream_key += seq_key;
  wb->Put(cf[kStreams], stream_key, rocksdb::Slice());
  wb->Put(cf[kEventIds], std::string(id.AsBytes()), seq_key);
  if (!idempotency_key.empty()) {
    std::string v = seq_key;
    v.append(id.AsBytes());
    wb->Put(cf[kIdempotency], rocksdb::Slice(idempotency_key.data(), idempotency_key.size()), v);
  }
}

}  // namespace

Status RocksDbEventLog::ImportRecords(const std::vector<ReplicaRecord>& records,
                                      uint64_t position) {
  std::unique_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db || !impl_->healthy.load())
    return Status::Unavailable("event log cannot accept writes");
  if (impl_->options.read_only) return Status::Unavailable("event log opened read-only");
  uint64_t last = 0;
  Sha256Digest head{};
  Status s = impl_->LoadHead(&last, &head);
  if (!s.ok()) return s;
  rocksdb::WriteBatch wb;
  const uint64_t first_last = last;
  for (const auto& r : records) {
    Event e;
    s = DecodeRecord(r.record, &e);
    if (!s.ok()) return Status::Corruption("replica record: " + s.ToString());
    if (e.seq <= last) continue;
    if (e.seq != last + 1)
      return Status::Corruption("replica skips from " + std::to_string(last) + " to " +
                                std::to_string(e.seq));
    if (e.prev_hash != head)
      return Status::Corruption("replica record " + std::to_string(e.seq) +
                                " does not chain to the one before it");
    PutRecordRows(&wb, impl_->cf, e.seq, r.record, e.tenant, e.stream, e.id, r.idempotency_key);
    last = e.seq;
    head = RecordHash(r.record);
  }
  wb.Put(impl_->cf[kCheckpoints],
         rocksdb::Slice(kReplicaCheckpoint.data(), kReplicaCheckpoint.size()),
         EncodeFixed64BE(position));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status rs = impl_->db->Write(wo, &wb);
  if (!rs.ok()) return FromRocks(rs);
  if (last != first_last) {
    impl_->MakePlanner(last, head);
    {
      std::lock_guard<std::mutex> lk(impl_->mu);
      impl_->committed.store(last);
    }
    impl_->stat_events.fetch_add(last - first_last);
    impl_->commit_cv.notify_all();
  }
  return Status::OK();
}

void RocksDbEventLog::AppendAsync(std::vector<EventDraft> drafts, AppendCallback cb) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    if (!impl_->stopping && !impl_->options.read_only) {
      impl_->queue.push_back(QueuedAppend{std::move(drafts), std::move(cb), {}, Status::OK()});
      impl_->queue_cv.notify_one();
      return;
    }
  }
  cb(Status::Unavailable(impl_->options.read_only ? "event log opened read-only"
                                                  : "event log is closed"),
     {});
}

void RocksDbEventLog::Impl::WriterLoop() {
  std::vector<QueuedAppend> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu);
      auto work = [&] { return !queue.empty() || stopping; };
      if (healthy.load()) {
        queue_cv.wait(lk, work);
      } else {
        queue_cv.wait_until(lk, next_recovery, work);  // or wake up to try again
      }
      if (queue.empty() && stopping) return;  // drained
      size_t events = 0;
      while (!queue.empty() && (batch.empty() || events < options.max_batch_events)) {
        events += queue.front().drafts.size();
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
      }
    }
    // A failed write stops RocksDB's writes: reopen it here, on this
    // thread, no more often than the backoff allows.
    const auto now = std::chrono::steady_clock::now();
    if (!healthy.load() && now >= next_recovery) {
      if (TryRecover().ok()) {
        recovery_backoff = std::chrono::milliseconds(20);
      } else {
        next_recovery = now + recovery_backoff;
        recovery_backoff = std::min(recovery_backoff * 2, std::chrono::milliseconds(2000));
      }
    }
    if (!batch.empty()) CommitBatch(batch);
    batch.clear();
  }
}

void RocksDbEventLog::Impl::CommitBatch(std::vector<QueuedAppend>& batch) {
  // The batch's callbacks, on every path, handed on as one (util/burst.h):
  // declared first, so it ends after db_lock is released.
  Burst answers;
  std::shared_lock<std::shared_mutex> db_lock(db_mu);
  auto answer_all = [&](const Status& s) {
    db_lock.unlock();
    static const std::vector<AppendOutcome> kNone;
    for (auto& item : batch) {
      const Status& mine = s.ok() ? item.refused : s;
      item.cb(mine, mine.ok() ? item.outcomes : kNone);
    }
  };
  if (!db || !healthy.load())
    return answer_all(Status::Unavailable("event log cannot accept writes: " + LastError()));
  std::vector<PlannedRecord> records;
  std::chrono::microseconds took{0};
  PlanBatch(batch, &records);
  Status s = WriteRecords(records, &took);
  if (!s.ok()) {
    planner->Abandon();
    stat_failed.fetch_add(1);
    return answer_all(s);
  }
  planner->Commit();
  NoteCommitted(batch, records, took);
  answer_all(Status::OK());
}

void RocksDbEventLog::Impl::PlanBatch(std::vector<QueuedAppend>& batch,
                                      std::vector<PlannedRecord>* records) {
  bool unreadable = false;  // the index failed the item being planned
  auto lookup = [&](const std::string& key, uint64_t* seq, EventId* id) {
    rocksdb::PinnableSlice v;
    rocksdb::Status g = db->Get(rocksdb::ReadOptions(), cf[kIdempotency], key, &v);
    if (g.IsNotFound()) return Status::NotFound("");
    unreadable = unreadable || !g.ok() || v.size() != 24;
    if (!g.ok()) return FromRocks(g);
    if (v.size() != 24) return Status::Corruption("idempotency index entry of the wrong size");
    *seq = DecodeFixed64BE(v.data());
    *id = EventId::FromBytes(std::string_view(v.data() + 8, 16));
    return Status::OK();
  };
  for (auto& item : batch) {
    unreadable = false;
    Status s = planner->Plan(item.drafts, lookup, records, &item.outcomes);
    if (!s.ok()) {
      item.refused = Status::Unavailable("event log cannot accept this append: " + s.ToString());
      if (unreadable) stat_index_refused.fetch_add(1);  // not, say, a key store's refusal
    }
  }
}

Status RocksDbEventLog::Impl::WriteRecords(const std::vector<PlannedRecord>& records,
                                           std::chrono::microseconds* took) {
  if (records.empty()) return Status::OK();
  // The rows go into commit_rows, whose buffer Clear() keeps, sized
  // up front (regrown, a group's buffer would be copied several times): a
  // group bigger than any before makes it anew at its size, one past
  // kMaxKeptRows has a buffer of its own, not kept.
  size_t bytes = 64;
  for (const auto& r : records)
    bytes += r.record.size() + r.tenant.size() + r.stream.size() + r.idempotency_key.size() + 128;
  std::optional<rocksdb::WriteBatch> own;
  if (bytes > kMaxKeptRows) {
    own.emplace(bytes);
  } else if (bytes > commit_rows.Data().capacity()) {
    commit_rows = rocksdb::WriteBatch(bytes);
  } else {
    commit_rows.Clear();
  }
  rocksdb::WriteBatch& wb = own ? *own : commit_rows;
  for (const auto& r : records)
    PutRecordRows(&wb, cf, r.seq, r.record, r.tenant, r.stream, r.id, r.idempotency_key);
  if (options.replicate) {
    uint64_t position = 0;
    Status s = options.replicate(records, &position);
    if (!s.ok()) return s;
    wb.Put(cf[kCheckpoints], rocksdb::Slice(kReplicaCheckpoint.data(), kReplicaCheckpoint.size()),
           EncodeFixed64BE(position));
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  const auto start = std::chrono::steady_clock::now();
  rocksdb::Status rs = db->Write(wo, &wb);
  *took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                start);
  if (rs.ok()) return Status::OK();
  healthy.store(false);
  next_recovery = std::chrono::steady_clock::now();  // the first try at once
  {
    std::lock_guard<std::mutex> lk(error_mu);
    last_error = rs.ToString();
  }
  return Status::Unavailable("event log cannot accept writes: " + rs.ToString());
}

void RocksDbEventLog::Impl::NoteCommitted(const std::vector<QueuedAppend>& batch,
                                          const std::vector<PlannedRecord>& records,
                                          std::chrono::microseconds took) {
  uint64_t dups = 0;
  for (const auto& item : batch)
    for (const auto& o : item.outcomes) dups += o.duplicate ? 1 : 0;
  stat_dups.fetch_add(dups);
  if (records.empty()) return;
  if (took >= kSlowCommit) stat_slow.fetch_add(1);
  if (static_cast<uint64_t>(took.count()) > stat_slowest_us.load())
    stat_slowest_us.store(static_cast<uint64_t>(took.count()));
  stat_commits.fetch_add(1);
  stat_events.fetch_add(records.size());
  commit_us.Observe(static_cast<int64_t>(took.count()));
  commit_events.Observe(static_cast<int64_t>(records.size()));
  {
    std::lock_guard<std::mutex> lk(mu);
    committed.store(records.back().seq);
  }
  commit_cv.notify_all();
}

}  // namespace dfm
