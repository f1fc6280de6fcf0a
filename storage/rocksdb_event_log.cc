#include "storage/data_dir.h"
#include "storage/durable_file.h"
#include "storage/rocksdb_log_impl.h"

namespace dfm {

using namespace rocksdb_log;  // NOLINT: this file's own insides

void RocksDbEventLog::Impl::MakePlanner(uint64_t last, const Sha256Digest& head) {
  planner = std::make_unique<AppendPlanner>(options.clock, last, head);
  if (!sealer) return;
  // Both run on the writer thread, which holds db_mu (shared).
  PayloadSealer::Lookups l;
  l.stream_key = [this](std::string_view tenant, std::string_view stream) -> uint64_t {
    std::string prefix = StreamPrefix(tenant, stream);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf[kStreams]));
    int looked = 0;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) && looked < 16;
         it->Next()) {
      if (it->key().size() != prefix.size() + 8) continue;
      ++looked;
      std::string rec;
      if (!db->Get(rocksdb::ReadOptions(), cf[kEvents],
                   rocksdb::Slice(it->key().data() + prefix.size(), 8), &rec)
               .ok())
        return 0;
      if (uint64_t no = PayloadSealer::KeyOfRecord(rec)) return no;
    }
    return 0;
  };
  l.event_key = [this](const EventId& id) -> uint64_t {
    std::string seq_key, rec;
    if (!db->Get(rocksdb::ReadOptions(), cf[kEventIds], std::string(id.AsBytes()), &seq_key).ok() ||
        !db->Get(rocksdb::ReadOptions(), cf[kEvents], seq_key, &rec).ok())
      return 0;
    return PayloadSealer::KeyOfRecord(rec);
  };
  planner->SetSealer(sealer.get(), std::move(l));
}

RocksDbEventLog::Impl::~Impl() {
  CloseDb();
  if (!options.read_only && !options.path.empty()) KeepOwnersFiles(options.path);
  if (!temp_secondary_path.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_secondary_path, ec);
  }
}

Status RocksDbEventLog::Impl::LoadHead(uint64_t* last_seq, Sha256Digest* head) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf[kEvents]));
  it->SeekToLast();
  *last_seq = 0;
  *head = Sha256Digest{};
  if (!it->Valid()) return FromRocks(it->status());
  if (it->key().size() != 8) return Status::Corruption("bad key in events");
  *last_seq = DecodeFixed64BE(it->key().data());
  *head = RecordHash(std::string_view(it->value().data(), it->value().size()));
  return Status::OK();
}

std::string RocksDbEventLog::Impl::LastError() {
  std::lock_guard<std::mutex> lk(error_mu);
  return last_error;
}

void RocksDbEventLog::Impl::CloseDb() {
  for (auto* h : cf)
    if (h) db->DestroyColumnFamilyHandle(h);
  cf.clear();
  db.reset();
}

Status RocksDbEventLog::Impl::OpenPrimary() {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status rs = rocksdb::DB::Open(db_opts, options.path, cfds, &cf, &raw);
  if (!rs.ok()) return FromRocks(rs);
  uint64_t last = 0;
  Sha256Digest head{};
  Status s = TakeDb(raw, &last, &head);
  if (!s.ok()) return s;
  MakePlanner(last, head);
  return Status::OK();
}

Status RocksDbEventLog::Impl::TakeDb(rocksdb::DB* raw, uint64_t* last, Sha256Digest* head) {
  db.reset(raw);
  Status s = LoadHead(last, head);
  if (s.ok()) committed.store(*last);
  return s;
}

Status RocksDbEventLog::Impl::TryRecover() {
  std::unique_lock<std::shared_mutex> lk(db_mu);
  if (healthy.load()) return Status::OK();
  if (db && db->Resume().ok()) {
    healthy.store(true);
    return Status::OK();
  }
  CloseDb();
  Status s = OpenPrimary();
  if (s.ok()) {
    healthy.store(true);
  } else {
    CloseDb();
    std::lock_guard<std::mutex> elk(error_mu);
    last_error = s.ToString();
  }
  return s;
}

void RocksDbEventLog::Impl::UpdateHighWater() {
  const uint64_t head = committed.load();
  if (head > high_water_written.load() && WriteHighWater(options.path, head).ok())
    high_water_written.store(head);
}

void RocksDbEventLog::Impl::MeasureFreeSpace() {
  if (auto f = FreeBytes(options.path)) free_bytes.store(*f);
}

RocksDbEventLog::RocksDbEventLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RocksDbEventLog::~RocksDbEventLog() { Close(); }

Status RocksDbEventLog::Open(const RocksDbLogOptions& options,
                             std::unique_ptr<RocksDbEventLog>* out) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.keys) impl->sealer = std::make_unique<PayloadSealer>(options.keys.get());
  impl->Configure();
  Status s = options.read_only ? impl->OpenSecondary() : impl->OpenWritable();
  if (!s.ok()) return s;
  out->reset(new RocksDbEventLog(std::move(impl)));
  return Status::OK();
}

void RocksDbEventLog::Impl::Configure() {
  db_opts.create_if_missing = !options.read_only;
  db_opts.create_missing_column_families = !options.read_only;
  // A synced write is never lost. After a crash RocksDB replays every
  // complete write batch and drops a torn last record (a write never
  // acknowledged); a WAL damaged before its end fails the open instead of
  // being cut there, which would drop acknowledged events silently. The
  // operator's `dfm log recover` (accept_loss) cuts it there.
  db_opts.wal_recovery_mode = options.accept_loss
                                  ? rocksdb::WALRecoveryMode::kPointInTimeRecovery
                                  : rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  // Column families with few writes (checkpoints, consumer state) would
  // otherwise keep every WAL alive until their memtable fills (1.5 GB of
  // WAL after 30 s of full-rate ingest); past this total they are flushed
  // and old WALs are deleted.
  db_opts.max_total_wal_size = 512 << 20;
  db_opts.max_background_jobs = 2;
  // The streams' insert hints (below) work only when a write group's
  // batches go into the memtables in turn, by the group's leader: mostly
  // the log's writer, which then also inserts the projections' unsynced
  // commits that joined its group (they were inserted in turn before too).
  db_opts.allow_concurrent_memtable_write = false;
  db_opts.keep_log_file_num = 4;
  // Memtables of all column families together stay under this budget
  // (past it, RocksDB flushes the column family holding the oldest
  // memtable), so resident memory does not grow with the number of column
  // families or of contacts (bench/README.md, memory).
  db_opts.db_write_buffer_size = 256 << 20;
  // A primary deletes its WAL files a piece at a time (storage/
  // wal_trash_fs.h): 1 MiB at a time, at most 64 MiB/s, above the WAL's
  // rate at full ingest (~50 MB/s); 4 MiB pieces still held a WAL sync up
  // to 13 ms now and then (bench/README.md (b)). Past 1 GiB waiting (twice
  // max_total_wal_size), WALs are unlinked at once. A read-only open makes
  // no obsolete files and leaves WALs being cut (`.log.cut`) alone; the
  // next primary open adopts those a stop or a crash left.
  std::shared_ptr<rocksdb::FileSystem> fs =
      options.file_system ? options.file_system : rocksdb::FileSystem::Default();
  if (!options.read_only) {
    wal_trash = std::make_shared<WalTrashFileSystem>(fs, /*bytes_per_second=*/64 << 20,
                                                     /*chunk_bytes=*/1 << 20,
                                                     /*max_backlog_bytes=*/uint64_t{1} << 30);
    fs = wal_trash;
  }
  if (fs != rocksdb::FileSystem::Default()) {
    env = rocksdb::NewCompositeEnv(fs);
    db_opts.env = env.get();
  }
  // A flush writes a 64 MB table file; synced only at its end, those
  // bytes reach the disk in one piece that WAL syncs queue behind (20-26
  // ms). Written back each MiB instead, they trickle out as written.
  db_opts.bytes_per_sync = 1 << 20;

  rocksdb::BlockBasedTableOptions point_lookup;
  point_lookup.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  for (size_t i = 0; i < kNumCf; ++i) {
    rocksdb::ColumnFamilyOptions cfo(db_opts);
    if (i == kIdempotency || i == kEventIds) {
      cfo.table_factory.reset(rocksdb::NewBlockBasedTableFactory(point_lookup));
      cfo.memtable_whole_key_filtering = true;
      cfo.memtable_prefix_bloom_size_ratio = 0.05;
    }
    cfo.write_buffer_size = 32 << 20;  // indexes and consumer state: small values
    if (i == kStreams) cfo.memtable_insert_with_hint_prefix_extractor.reset(NewStreamInsertHint());
    if (i == kEvents) {
      // Records are written once in sequence order: big memtables and LZ4
      // keep flush and compaction CPU off the ingest path. LZ4 at every
      // level, the bottom one too: a rebuild, a replay or an audit scans
      // the whole log, and ZSTD's decompression was 41% of a scan's CPU
      // (bench/README.md (f)); the bench's log is 1.6 GB either way.
      // A log that seals payloads compresses nothing: its blocks, mostly
      // ciphertext, came out of LZ4 less than an eighth smaller, so RocksDB
      // stored them as they were, and the LZ4 pass was 2% of ingest's CPU.
      const rocksdb::CompressionType c =
          options.keys ? rocksdb::kNoCompression : rocksdb::kLZ4Compression;
      cfo.write_buffer_size = 128 << 20;
      cfo.compression = c;
      cfo.bottommost_compression = c;
    }
    cfds.emplace_back(kCfNames[i], cfo);
  }
}

Status RocksDbEventLog::Impl::OpenSecondary() {
  db_opts.max_open_files = -1;  // required of a secondary
  std::string secondary = options.secondary_path;
  if (secondary.empty()) {
    char tmpl[] = "/tmp/dfm-secondary-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return Status::IOError("cannot create a temporary directory");
    secondary = tmpl;
    temp_secondary_path = secondary;
  }
  if (Status found = FindLogAt(options.path); !found.ok()) return found;
  // The mark before the log: the log read after it holds at least as much.
  Status hw = ReadHighWater(options.path, &high_water_at_open);
  if (!hw.ok()) return hw;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status rs =
      rocksdb::DB::OpenAsSecondary(db_opts, options.path, secondary, cfds, &cf, &raw);
  if (rs.IsCorruption()) {
    return Status::Corruption("the event log's WAL is damaged before its end (" + rs.ToString() +
                              "): acknowledged events may be past the damage");
  }
  if (!rs.ok()) return FromRocks(rs);
  uint64_t last = 0;
  Sha256Digest head{};
  return TakeDb(raw, &last, &head);
}

Status RocksDbEventLog::Impl::OpenWritable() {
  std::error_code ec;
  if (!std::filesystem::exists(options.path, ec)) {
    // It holds webhook bodies and OAuth grants: the owner's alone.
    std::filesystem::create_directories(options.path, ec);
    std::filesystem::permissions(options.path, std::filesystem::perms::owner_all, ec);
  }
  Status s = ReadHighWater(options.path, &high_water_at_open);
  if (!s.ok()) return s;
  // Flushes and compactions write their table files around the page
  // cache where the file system takes it. The tail is read from the
  // memtables, so the cache held nothing read soon, and the copy into it
  // was most of RocksDB's own CPU at full ingest (bench/README.md (b)).
  // A file system of the caller's (tests' fault injection) decides alone.
  db_opts.use_direct_io_for_flush_and_compaction =
      !options.file_system && TakesDirectWrites(options.path);
  s = OpenPrimary();
  if (s.IsCorruption()) {
    return Status::Corruption("the event log's WAL in " + options.path +
                              " is damaged before its end (" + s.message() +
                              "): acknowledged events may be past the damage. " + kRecoverHint);
  }
  if (!s.ok()) return s;
  s = CheckAcknowledged();
  if (!s.ok()) return s;
  high_water_written.store(std::min(committed.load(), high_water_at_open));
  MeasureFreeSpace();
  // WALs a stop or a crash left half-cut (RocksDB ignores them).
  wal_trash->AdoptLeftovers(options.path);
  RemoveStaleFiles();
  s = CheckLayout();
  if (!s.ok()) return s;
  StartThreads();
  return Status::OK();
}

Status RocksDbEventLog::Impl::CheckAcknowledged() {
  const uint64_t head = committed.load();
  if (head < high_water_at_open) {
    if (!options.accept_loss) {
      return Status::Corruption("the event log in " + options.path + " ends at sequence " +
                                std::to_string(head) + ", but events up to " +
                                std::to_string(high_water_at_open) + " were acknowledged (" +
                                kHighWaterFile + "): its WAL lost data. " + kRecoverHint);
    }
    lost = {head + 1, high_water_at_open};
    Status s = WriteHighWater(options.path, head);  // the mark follows what is left
    if (!s.ok()) return s;
  }
  return Status::OK();
}

void RocksDbEventLog::Impl::RemoveStaleFiles() {
  std::error_code ec;
  // Left by a BulkCommitConsumer that crashed before ingesting (an
  // ingested file is RocksDB's own hard link by then), or by a crash in
  // TakesDirectWrites' probe: never data. A backup's checkpoints, left by
  // a process that died during it (no backup runs before this open: one
  // runs in the process holding the log), are links that would keep
  // files an erasure has since rewritten.
  std::filesystem::remove_all(std::filesystem::path(options.path) / kBackupStagingDir, ec);
  std::vector<std::filesystem::path> stale;
  for (std::filesystem::directory_iterator it(options.path, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::filesystem::path& f = it->path();
    const std::string name = f.filename().string();
    if ((name.rfind("bulk-", 0) == 0 && f.extension() == ".sst") ||
        name.rfind(kDirectProbePrefix, 0) == 0)
      stale.push_back(f);
  }
  for (const auto& f : stale) std::filesystem::remove(f, ec);
}

Status RocksDbEventLog::Impl::CheckLayout() {
  std::string layout;
  rocksdb::Status g = db->Get(rocksdb::ReadOptions(), cf[kDefault], kLayoutKey, &layout);
  if (g.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    g = db->Put(wo, cf[kDefault], kLayoutKey, kLayoutVersion);
    if (!g.ok()) return FromRocks(g);
  } else if (!g.ok()) {
    return FromRocks(g);
  } else if (layout != kLayoutVersion) {
    return Status::Corruption("unknown storage layout version " + layout);
  }
  return Status::OK();
}

void RocksDbEventLog::Impl::StartThreads() {
  writer = std::thread([this] {
    pthread_setname_np(pthread_self(), "dfm-log-write");
    // RocksDB counts into per-thread perf counters by default, each count
    // a thread-local access through the shared library (~1.5% of dfm's
    // CPU at full ingest); nothing reads the writer's.
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
    WriterLoop();
  });
  maintenance = std::thread([this] {
    pthread_setname_np(pthread_self(), "dfm-log-maint");
    MaintenanceLoop();
  });
}

void RocksDbEventLog::Close() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    if (impl_->closed) return;
    impl_->closed = true;
    impl_->stopping = true;
  }
  impl_->queue_cv.notify_all();
  impl_->maintenance_cv.notify_all();
  if (impl_->writer.joinable()) impl_->writer.join();
  if (impl_->maintenance.joinable()) impl_->maintenance.join();
  if (!impl_->options.read_only) impl_->UpdateHighWater();
  impl_->commit_cv.notify_all();
}

uint64_t RocksDbEventLog::HighWaterAtOpen() const { return impl_->high_water_at_open; }

std::pair<uint64_t, uint64_t> RocksDbEventLog::LostOnOpen() const { return impl_->lost; }

void RocksDbEventLog::Impl::MaintenanceLoop() {
  auto next_disk_check = std::chrono::steady_clock::now() + kDiskCheckEvery;
  std::unique_lock<std::mutex> lk(mu);
  while (!closed) {
    maintenance_cv.wait_for(lk, kHighWaterEvery, [&] { return closed; });
    if (closed) break;
    lk.unlock();
    UpdateHighWater();
    const auto now = std::chrono::steady_clock::now();
    if (options.min_free_bytes > 0 && now >= next_disk_check) {
      MeasureFreeSpace();
      next_disk_check = now + kDiskCheckEvery;
    }
    lk.lock();
  }
}

bool RocksDbEventLog::WritesTablesDirect() const {
  return impl_->db_opts.use_direct_io_for_flush_and_compaction;
}

Status RocksDbEventLog::WithDb(const std::function<Status(rocksdb::DB*)>& fn) const {
  std::shared_lock<std::shared_mutex> lk(impl_->db_mu);
  if (!impl_->db) return Status::Unavailable("event log closed");
  return fn(impl_->db.get());
}

Status RocksDbEventLog::Refresh() {
  std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db) return Status::Unavailable("event log is being reopened after a write failure");
  if (!impl_->options.read_only) return Status::OK();
  rocksdb::Status rs = impl_->db->TryCatchUpWithPrimary();
  if (!rs.ok()) return FromRocks(rs);
  uint64_t last = 0;
  Sha256Digest head{};
  Status s = impl_->LoadHead(&last, &head);
  if (s.ok()) impl_->committed.store(last);
  return s;
}

}  // namespace dfm
