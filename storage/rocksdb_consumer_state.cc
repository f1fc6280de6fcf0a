#include "storage/rocksdb_log_impl.h"

namespace dfm {

using namespace rocksdb_log;  // NOLINT: this file's own insides

Status RocksDbEventLog::ReadCheckpoint(std::string_view consumer, uint64_t* seq) const {
  std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db) return Status::Unavailable("event log is being reopened after a write failure");
  std::string v;
  rocksdb::Status g = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[kCheckpoints],
                                     rocksdb::Slice(consumer.data(), consumer.size()), &v);
  if (g.IsNotFound()) {
    *seq = 0;
    return Status::OK();
  }
  if (!g.ok()) return FromRocks(g);
  if (v.size() != 8) return Status::Corruption("bad checkpoint value");
  *seq = DecodeFixed64BE(v.data());
  return Status::OK();
}

Status RocksDbEventLog::CommitConsumer(std::string_view consumer, uint64_t seq,
                                       const std::vector<StateOp>& ops) {
  // Not synced: consumer state is rebuildable from the log, and the batch is
  // atomic, so after a crash state and checkpoint agree (possibly older).
  return CommitConsumerWith(consumer, seq, ops, /*sync=*/false);
}

Status RocksDbEventLog::CommitConsumerDurable(std::string_view consumer, uint64_t seq,
                                              const std::vector<StateOp>& ops) {
  return CommitConsumerWith(consumer, seq, ops, /*sync=*/true);
}

Status RocksDbEventLog::CommitConsumerWith(std::string_view consumer, uint64_t seq,
                                           const std::vector<StateOp>& ops, bool sync) {
  std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db) return Status::Unavailable("event log is being reopened after a write failure");
  if (impl_->options.read_only) return Status::Unavailable("event log opened read-only");
  rocksdb::WriteBatch wb;
  for (const auto& op : ops) {
    std::string k = ConsumerKey(consumer, op.key);
    if (op.erase) {
      wb.Delete(impl_->cf[kConsumerState], k);
    } else {
      wb.Put(impl_->cf[kConsumerState], k, op.value);
    }
  }
  wb.Put(impl_->cf[kCheckpoints], rocksdb::Slice(consumer.data(), consumer.size()),
         EncodeFixed64BE(seq));
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(impl_->db->Write(wo, &wb));
}

Status RocksDbEventLog::BulkCommitConsumer(std::string_view consumer, uint64_t seq,
                                           const StateEntryRefs& entries) {
  // Below this, inserting the keys costs less than writing a file.
  constexpr size_t kBulkMin = 65536;
  if (entries.size() < kBulkMin) return EventLog::BulkCommitConsumer(consumer, seq, entries);
  std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db) return Status::Unavailable("event log is being reopened after a write failure");
  if (impl_->options.read_only) return Status::Unavailable("event log opened read-only");
  // Two table files, one per column family, ingested in one atomic step:
  // the state and the checkpoint appear together or not at all. Ingested
  // data is newer than anything in the column family (it gets the next
  // sequence number), so it also wins over a DropConsumer's range deletion.
  static std::atomic<uint64_t> file_no{0};
  const std::string stem = impl_->options.path + "/bulk-" + std::to_string(::getpid()) + "-" +
                           std::to_string(file_no.fetch_add(1));
  // A rebuild's big state goes in two files written side by side (the
  // other folds are mostly done by then), the first half's keys all below
  // the second's.
  constexpr size_t kTwoFiles = 1 << 19;
  const size_t cut = entries.size() >= kTwoFiles ? entries.size() / 2 : entries.size();
  const std::string state_file = stem + "-state.sst", state_file2 = stem + "-state2.sst",
                    cp_file = stem + "-checkpoint.sst";
  auto cleanup = [&] {
    std::error_code ec;
    std::filesystem::remove(state_file, ec);
    std::filesystem::remove(state_file2, ec);
    std::filesystem::remove(cp_file, ec);
  };
  auto write = [&](size_t cf_index, const std::string& file,
                   const std::function<rocksdb::Status(rocksdb::SstFileWriter*)>& fill) {
    rocksdb::Options o(impl_->db_opts, impl_->cfds[cf_index].options);
    rocksdb::SstFileWriter w(rocksdb::EnvOptions(o), o, impl_->cf[cf_index]);
    rocksdb::Status rs = w.Open(file);
    if (rs.ok()) rs = fill(&w);
    if (rs.ok()) rs = w.Finish();
    return rs;
  };
  const std::string prefix = ConsumerKey(consumer, "");
  auto write_state = [&](const std::string& file, size_t from, size_t to) {
    return write(kConsumerState, file, [&](rocksdb::SstFileWriter* w) {
      std::string k = prefix;
      for (size_t i = from; i < to; ++i) {
        const StateEntryRef& e = entries[i];
        k.resize(prefix.size());
        k.append(e.key.data(), e.key.size());
        rocksdb::Status r =
            e.erase ? w->Delete(k) : w->Put(k, rocksdb::Slice(e.value.data(), e.value.size()));
        if (!r.ok()) return r;
      }
      return rocksdb::Status::OK();
    });
  };
  std::vector<std::string> state_files = {state_file};
  rocksdb::Status second;
  JoiningThread other;
  if (cut < entries.size()) {
    state_files.push_back(state_file2);
    other = JoiningThread([&] { second = write_state(state_file2, cut, entries.size()); });
  }
  rocksdb::Status rs = write_state(state_file, 0, cut);
  other.Join();
  if (rs.ok()) rs = second;
  if (rs.ok()) {
    rs = write(kCheckpoints, cp_file, [&](rocksdb::SstFileWriter* w) {
      return w->Put(rocksdb::Slice(consumer.data(), consumer.size()), EncodeFixed64BE(seq));
    });
  }
  if (rs.ok()) {
    std::vector<rocksdb::IngestExternalFileArg> args(2);
    args[0].column_family = impl_->cf[kConsumerState];
    args[0].external_files = state_files;
    args[1].column_family = impl_->cf[kCheckpoints];
    args[1].external_files = {cp_file};
    for (auto& a : args) {
      a.options.move_files = true;
      // The sequence number is kept in the MANIFEST rather than written into
      // each file (RocksDB's advice for databases no older than 5.16).
      a.options.write_global_seqno = false;
    }
    rs = impl_->db->IngestExternalFiles(args);
  }
  cleanup();  // moved files are already gone; a failed ingest leaves nothing behind
  return FromRocks(rs);
}

Status RocksDbEventLog::GetConsumerState(std::string_view consumer, std::string_view key,
                                         std::string* value) const {
  std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db) return Status::Unavailable("event log is being reopened after a write failure");
  return FromRocks(impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[kConsumerState],
                                  ConsumerKey(consumer, key), value));
}

Status RocksDbEventLog::ScanConsumerState(
    std::string_view consumer, std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& fn) const {
  std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db) return Status::Unavailable("event log is being reopened after a write failure");
  std::string base = ConsumerKey(consumer, "");
  std::string start = ConsumerKey(consumer, prefix);
  PrefixIterator it(impl_->db.get(), impl_->cf[kConsumerState], start);
  for (it->Seek(start); it->Valid(); it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    k.remove_prefix(base.size());
    if (!fn(k, std::string_view(it->value().data(), it->value().size()))) break;
  }
  return FromRocks(it->status());
}

Status RocksDbEventLog::DropConsumer(std::string_view consumer) {
  std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db) return Status::Unavailable("event log is being reopened after a write failure");
  if (impl_->options.read_only) return Status::Unavailable("event log opened read-only");
  std::string start = ConsumerKey(consumer, "");
  std::string end = PrefixEnd(start);
  rocksdb::WriteBatch wb;
  wb.DeleteRange(impl_->cf[kConsumerState], start, end);
  wb.Delete(impl_->cf[kCheckpoints], rocksdb::Slice(consumer.data(), consumer.size()));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status rs = impl_->db->Write(wo, &wb);
  if (!rs.ok()) return FromRocks(rs);
  // The state is gone once that write is synced. What follows only gives
  // its space back now rather than in compactions while the rebuild runs,
  // and does not decide the outcome (a failure here is no failed drop):
  // - table files below level 0 that hold nothing but this consumer's keys
  //   (a bulk commit writes such files) are deleted whole. No older key in
  //   a file that is kept can show through: the range deletion just
  //   written is newer than every key in the range, and it is not in a
  //   deleted file (it is in the memtable or level 0, which this skips; a
  //   file holding it ends at `end`, excluded by include_end=false). That
  //   holds because this log takes no RocksDB snapshots (a compaction
  //   under one could keep covered keys beside a piece of the deletion)
  //   and nothing writes a consumer's state while it is dropped;
  // - the rest of the range, the range deletion included, is compacted to
  //   the bottom, so the rebuild's bulk files land there too instead of in
  //   level 0, where they would be compacted again on the rebuild's cores.
  rocksdb::Slice lo(start), hi(end);
  if (rocksdb::DeleteFilesInRange(impl_->db.get(), impl_->cf[kConsumerState], &lo, &hi,
                                  /*include_end=*/false)
          .ok()) {
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    impl_->db->CompactRange(co, impl_->cf[kConsumerState], &lo, &hi).PermitUncheckedError();
  }
  return Status::OK();
}

Status RocksDbEventLog::CompactDerived() {
  std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db) return Status::Unavailable("event log is being reopened after a write failure");
  if (impl_->options.read_only) return Status::Unavailable("event log opened read-only");
  rocksdb::FlushOptions fo;
  fo.wait = true;
  std::vector<rocksdb::ColumnFamilyHandle*> all(impl_->cf.begin(), impl_->cf.end());
  rocksdb::Status rs = impl_->db->Flush(fo, all);
  if (!rs.ok()) return FromRocks(rs);
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  rs = impl_->db->CompactRange(co, impl_->cf[kConsumerState], nullptr, nullptr);
  if (!rs.ok()) return FromRocks(rs);
  return FromRocks(impl_->db->FlushWAL(/*sync=*/true));
}

Status RocksDbEventLog::DropDerived(const std::vector<std::string>& keep) {
  {
    std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
    if (!impl_->db) return Status::Unavailable("event log is being reopened after a write failure");
    if (impl_->options.read_only) return Status::Unavailable("event log opened read-only");
    rocksdb::WriteBatch wb;
    std::unique_ptr<rocksdb::Iterator> it(
        impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[kCheckpoints]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string name = it->key().ToString();
      if (std::find(keep.begin(), keep.end(), name) == keep.end())
        wb.Delete(impl_->cf[kCheckpoints], name);
    }
    if (!it->status().ok()) return FromRocks(it->status());
    std::unique_ptr<rocksdb::Iterator> first(
        impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[kConsumerState]));
    first->SeekToFirst();
    std::unique_ptr<rocksdb::Iterator> last(
        impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[kConsumerState]));
    last->SeekToLast();
    if (first->Valid() && last->Valid())
      wb.DeleteRange(impl_->cf[kConsumerState], first->key(),
                     last->key().ToString() + '\0');  // [first, last]
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rocksdb::Status rs = impl_->db->Write(wo, &wb);
    if (!rs.ok()) return FromRocks(rs);
  }
  return CompactDerived();
}

bool RocksDbEventLog::CheckpointsReach(uint64_t seq, const std::vector<std::string>& except) const {
  std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db) return false;
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[kCheckpoints]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (std::find(except.begin(), except.end(), it->key().ToString()) != except.end()) continue;
    if (it->value().size() != 8) continue;
    const uint64_t at = DecodeFixed64BE(it->value().data());
    if (at > 0 && at < seq) return false;  // 0: a store that follows no log position
  }
  return it->status().ok();
}

}  // namespace dfm
