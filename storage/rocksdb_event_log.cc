#include "storage/rocksdb_event_log.h"

#include <pthread.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>

#include "events/codec.h"
#include "storage/append_planner.h"
#include "storage/crc32c.h"
#include "storage/high_water.h"
#include "storage/sealer.h"
#include "storage/stream_keys.h"
#include "storage/wal_trash_fs.h"
#include "util/burst.h"
#include "util/coding.h"
#include "util/joining_thread.h"

namespace dfm {

namespace {

// Column families; docs/event-format.md describes each key and value.
enum Cf : size_t {
  kDefault = 0,
  kEvents,
  kStreams,
  kIdempotency,
  kEventIds,
  kCheckpoints,
  kConsumerState,
  kNumCf
};
const char* const kCfNames[kNumCf] = {"default",     "events",      "streams",       "idempotency",
                                      "event_ids",   "checkpoints", "consumer_state"};
constexpr char kLayoutKey[] = "layout_version";
constexpr char kLayoutVersion[] = "1";

Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound(s.ToString());
  if (s.IsCorruption()) return Status::Corruption(s.ToString());
  if (s.IsIOError() || s.IsNoSpace()) return Status::IOError(s.ToString());
  return Status::IOError(s.ToString());
}

std::string ConsumerKey(std::string_view consumer, std::string_view key) {
  std::string k;
  PutLengthPrefixed(&k, consumer);
  k.append(key.data(), key.size());
  return k;
}

// The smallest key greater than every key starting with `prefix`; empty when
// there is none (prefix is all 0xFF).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto c = static_cast<unsigned char>(prefix.back());
    if (c != 0xFF) {
      prefix.back() = static_cast<char>(c + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

struct QueuedAppend {
  std::vector<EventDraft> drafts;
  AppendCallback cb;
  std::vector<AppendOutcome> outcomes;
};

// What to do about a log that may have lost acknowledged events.
constexpr char kRecoverHint[] =
    "Restore the data directory from a backup, or run `dfm log recover` to start from what "
    "precedes the damage (the events after it are lost; the loss is recorded in the log)";

// Free bytes of the file system holding `path`; nullopt when unknown.
std::optional<uint64_t> FreeBytes(const std::string& path) {
  struct statvfs fs;
  if (statvfs(path.c_str(), &fs) != 0) return std::nullopt;
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

}  // namespace

struct RocksDbEventLog::Impl {
  RocksDbLogOptions options;
  // Composite env over the file system: options.file_system or the
  // default, wrapped in a WalTrashFileSystem for a primary; null when the
  // default is used as it is.
  std::unique_ptr<rocksdb::Env> env;
  std::shared_ptr<WalTrashFileSystem> wal_trash;  // a primary's; owned by env too
  rocksdb::Options db_opts;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfds;
  // Guards `db` and `cf` (shared: every use; exclusive: reopening after a
  // write failure RocksDB cannot resume from) and the planner.
  mutable std::shared_mutex db_mu;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> cf;
  std::string temp_secondary_path;

  std::unique_ptr<AppendPlanner> planner;  // writer thread only
  std::unique_ptr<PayloadSealer> sealer;   // with options.keys

  // A planner that continues from (last, head), sealing with `sealer`.
  void MakePlanner(uint64_t last, const Sha256Digest& head) {
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
      if (!db->Get(rocksdb::ReadOptions(), cf[kEventIds], std::string(id.AsBytes()), &seq_key)
               .ok() ||
          !db->Get(rocksdb::ReadOptions(), cf[kEvents], seq_key, &rec).ok())
        return 0;
      return PayloadSealer::KeyOfRecord(rec);
    };
    planner->SetSealer(sealer.get(), std::move(l));
  }
  std::atomic<uint64_t> committed{0};

  mutable std::mutex mu;
  mutable std::condition_variable queue_cv;   // writer waits for work
  mutable std::condition_variable commit_cv;  // readers wait for new events
  std::deque<QueuedAppend> queue;
  bool stopping = false;
  bool closed = false;
  std::thread writer;

  mutable std::atomic<bool> healthy{true};
  mutable std::mutex error_mu;
  std::string last_error;
  // After a failed write, the writer thread reopens RocksDB no sooner than
  // this, backing off between tries (writer thread only).
  std::chrono::steady_clock::time_point next_recovery{};
  std::chrono::milliseconds recovery_backoff{20};

  // The high-water mark (storage/high_water.h): as read at open, and as
  // last written by the maintenance thread (or Close()).
  uint64_t high_water_at_open = 0;
  std::pair<uint64_t, uint64_t> lost{0, 0};
  std::atomic<uint64_t> high_water_written{0};
  // A primary's second thread: keeps the mark up and measures free space,
  // so neither is done on the writer's or a caller's thread.
  std::thread maintenance;
  std::condition_variable maintenance_cv;  // with `mu`: wakes it to stop
  std::atomic<uint64_t> free_bytes{UINT64_MAX};

  std::atomic<uint64_t> stat_commits{0}, stat_events{0}, stat_dups{0}, stat_failed{0};
  std::atomic<uint64_t> stat_slow{0}, stat_slowest_us{0};  // written by the writer thread only
  Histogram commit_us{Histogram::LatencyBoundsUs()};      // each group commit's synced write
  Histogram commit_events{Histogram::CountBounds()};      // events in it

  ~Impl() {
    CloseDb();
    if (!temp_secondary_path.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(temp_secondary_path, ec);
    }
  }

  Status LoadHead(uint64_t* last_seq, Sha256Digest* head) {
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

  std::string LastError() {
    std::lock_guard<std::mutex> lk(error_mu);
    return last_error;
  }

  void CloseDb() {
    for (auto* h : cf)
      if (h) db->DestroyColumnFamilyHandle(h);
    cf.clear();
    db.reset();
  }

  // Opens the primary and loads the chain head into a fresh planner.
  // REQUIRES: db_mu held exclusively (or no other thread running).
  Status OpenPrimary() {
    rocksdb::DB* raw = nullptr;
    rocksdb::Status rs = rocksdb::DB::Open(db_opts, options.path, cfds, &cf, &raw);
    if (!rs.ok()) return FromRocks(rs);
    db.reset(raw);
    uint64_t last = 0;
    Sha256Digest head{};
    Status s = LoadHead(&last, &head);
    if (!s.ok()) return s;
    committed.store(last);
    MakePlanner(last, head);
    return Status::OK();
  }

  // After a failed write: RocksDB's own Resume(), else a reopen (WAL write
  // errors are not resumable). Either way the planner restarts from what is
  // durable. OK once the log accepts writes again.
  Status TryRecover() {
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

  void WriterLoop();
  void CommitBatch(std::vector<QueuedAppend>& batch);
  void MaintenanceLoop();
  // Writes the mark when the log has moved past it.
  void UpdateHighWater() {
    const uint64_t head = committed.load();
    if (head > high_water_written.load() && WriteHighWater(options.path, head).ok())
      high_water_written.store(head);
  }
  void MeasureFreeSpace() {
    if (auto f = FreeBytes(options.path)) free_bytes.store(*f);
  }
};

RocksDbEventLog::RocksDbEventLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RocksDbEventLog::~RocksDbEventLog() { Close(); }

Status RocksDbEventLog::Open(const RocksDbLogOptions& options,
                             std::unique_ptr<RocksDbEventLog>* out) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.keys) impl->sealer = std::make_unique<PayloadSealer>(options.keys.get());

  rocksdb::Options& db_opts = impl->db_opts;
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
    impl->wal_trash = std::make_shared<WalTrashFileSystem>(
        fs, /*bytes_per_second=*/64 << 20, /*chunk_bytes=*/1 << 20,
        /*max_backlog_bytes=*/uint64_t{1} << 30);
    fs = impl->wal_trash;
  }
  if (fs != rocksdb::FileSystem::Default()) {
    impl->env = rocksdb::NewCompositeEnv(fs);
    db_opts.env = impl->env.get();
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
    impl->cfds.emplace_back(kCfNames[i], cfo);
  }

  if (options.read_only) {
    db_opts.max_open_files = -1;  // required of a secondary
    std::string secondary = options.secondary_path;
    if (secondary.empty()) {
      char tmpl[] = "/tmp/dfm-secondary-XXXXXX";
      if (mkdtemp(tmpl) == nullptr) return Status::IOError("cannot create a temporary directory");
      secondary = tmpl;
      impl->temp_secondary_path = secondary;
    }
    if (!std::filesystem::exists(options.path + "/CURRENT")) {
      return Status::NotFound("no event log at " + options.path);
    }
    // The mark before the log: the log read after it holds at least as much.
    Status hw = ReadHighWater(options.path, &impl->high_water_at_open);
    if (!hw.ok()) return hw;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status rs = rocksdb::DB::OpenAsSecondary(db_opts, options.path, secondary,
                                                      impl->cfds, &impl->cf, &raw);
    if (rs.IsCorruption()) {
      return Status::Corruption("the event log's WAL is damaged before its end (" +
                                rs.ToString() + "): acknowledged events may be past the damage");
    }
    if (!rs.ok()) return FromRocks(rs);
    impl->db.reset(raw);
    uint64_t last = 0;
    Sha256Digest head{};
    Status s = impl->LoadHead(&last, &head);
    if (!s.ok()) return s;
    impl->committed.store(last);
  } else {
    std::error_code ec;
    if (!std::filesystem::exists(options.path, ec)) {
      // It holds webhook bodies and OAuth grants: the owner's alone.
      std::filesystem::create_directories(options.path, ec);
      std::filesystem::permissions(options.path, std::filesystem::perms::owner_all, ec);
    }
    Status s = ReadHighWater(options.path, &impl->high_water_at_open);
    if (!s.ok()) return s;
    s = impl->OpenPrimary();
    if (s.IsCorruption()) {
      return Status::Corruption("the event log's WAL in " + options.path +
                                " is damaged before its end (" + s.message() +
                                "): acknowledged events may be past the damage. " + kRecoverHint);
    }
    if (!s.ok()) return s;
    const uint64_t head = impl->committed.load();
    if (head < impl->high_water_at_open) {
      if (!options.accept_loss) {
        return Status::Corruption(
            "the event log in " + options.path + " ends at sequence " + std::to_string(head) +
            ", but events up to " + std::to_string(impl->high_water_at_open) +
            " were acknowledged (" + kHighWaterFile + "): its WAL lost data. " + kRecoverHint);
      }
      impl->lost = {head + 1, impl->high_water_at_open};
      s = WriteHighWater(options.path, head);  // the mark follows what is left
      if (!s.ok()) return s;
    }
    impl->high_water_written.store(std::min(head, impl->high_water_at_open));
    impl->MeasureFreeSpace();
    // WALs a stop or a crash left half-cut (RocksDB ignores them).
    impl->wal_trash->AdoptLeftovers(options.path);
    // Left by a BulkCommitConsumer that crashed before ingesting (an
    // ingested file is RocksDB's own hard link by then): never data.
    std::vector<std::filesystem::path> stale;
    for (std::filesystem::directory_iterator it(options.path, ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::filesystem::path& f = it->path();
      if (f.filename().string().rfind("bulk-", 0) == 0 && f.extension() == ".sst")
        stale.push_back(f);
    }
    for (const auto& f : stale) std::filesystem::remove(f, ec);
    std::string layout;
    rocksdb::Status g =
        impl->db->Get(rocksdb::ReadOptions(), impl->cf[kDefault], kLayoutKey, &layout);
    if (g.IsNotFound()) {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      g = impl->db->Put(wo, impl->cf[kDefault], kLayoutKey, kLayoutVersion);
      if (!g.ok()) return FromRocks(g);
    } else if (!g.ok()) {
      return FromRocks(g);
    } else if (layout != kLayoutVersion) {
      return Status::Corruption("unknown storage layout version " + layout);
    }
    Impl* p = impl.get();
    impl->writer = std::thread([p] {
      pthread_setname_np(pthread_self(), "dfm-log-write");
      // RocksDB counts into per-thread perf counters by default, each count
      // a thread-local access through the shared library (~1.5% of dfm's
      // CPU at full ingest); nothing reads the writer's.
      rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
      p->WriterLoop();
    });
    impl->maintenance = std::thread([p] {
      pthread_setname_np(pthread_self(), "dfm-log-maint");
      p->MaintenanceLoop();
    });
  }
  out->reset(new RocksDbEventLog(std::move(impl)));
  return Status::OK();
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

Status RocksDbEventLog::ImportRecords(const std::vector<ReplicaRecord>& records,
                                      uint64_t position) {
  std::unique_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db || !impl_->healthy.load()) return Status::Unavailable("event log cannot accept writes");
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
    std::string seq_key = EncodeFixed64BE(e.seq);
    wb.Put(impl_->cf[kEvents], seq_key, r.record);
    std::string stream_key = StreamPrefix(e.tenant, e.stream);
    stream_key += seq_key;
    wb.Put(impl_->cf[kStreams], stream_key, rocksdb::Slice());
    wb.Put(impl_->cf[kEventIds], std::string(e.id.AsBytes()), seq_key);
    if (!r.idempotency_key.empty()) {
      std::string v = seq_key;
      v.append(e.id.AsBytes());
      wb.Put(impl_->cf[kIdempotency], r.idempotency_key, v);
    }
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

void RocksDbEventLog::AppendAsync(std::vector<EventDraft> drafts, AppendCallback cb) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    if (!impl_->stopping && !impl_->options.read_only) {
      impl_->queue.push_back(QueuedAppend{std::move(drafts), std::move(cb), {}});
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
  if (!db || !healthy.load()) {
    Status err = Status::Unavailable("event log cannot accept writes: " + LastError());
    db_lock.unlock();
    for (auto& item : batch) item.cb(err, {});
    return;
  }
  std::vector<PlannedRecord> records;
  auto lookup = [&](const std::string& key, uint64_t* seq, EventId* id) {
    rocksdb::PinnableSlice v;
    if (!db->Get(rocksdb::ReadOptions(), cf[kIdempotency], key, &v).ok() || v.size() != 24) {
      return false;
    }
    *seq = DecodeFixed64BE(v.data());
    *id = EventId::FromBytes(std::string_view(v.data() + 8, 16));
    return true;
  };
  for (auto& item : batch) {
    Status ps = planner->Plan(item.drafts, lookup, &records, &item.outcomes);
    if (ps.ok()) continue;
    planner->Abandon();
    stat_failed.fetch_add(1);
    db_lock.unlock();
    Status err = Status::Unavailable("event log cannot accept writes: " + ps.ToString());
    for (auto& i : batch) i.cb(err, {});
    return;
  }

  rocksdb::Status rs;
  std::chrono::microseconds write_took{0};  // counted once the write succeeds
  if (!records.empty()) {
    // Reserved up front: the batch's buffer would otherwise be regrown
    // (and copied) several times per group.
    size_t bytes = 64;
    for (const auto& r : records)
      bytes += r.record.size() + r.tenant.size() + r.stream.size() + r.idempotency_key.size() + 128;
    rocksdb::WriteBatch wb(bytes);
    for (const auto& r : records) {
      std::string seq_key = EncodeFixed64BE(r.seq);
      wb.Put(cf[kEvents], seq_key, r.record);
      std::string stream_key = StreamPrefix(r.tenant, r.stream);
      stream_key += seq_key;
      wb.Put(cf[kStreams], stream_key, rocksdb::Slice());
      wb.Put(cf[kEventIds], std::string(r.id.AsBytes()), seq_key);
      if (!r.idempotency_key.empty()) {
        std::string v = seq_key;
        v.append(r.id.AsBytes());
        wb.Put(cf[kIdempotency], r.idempotency_key, v);
      }
    }
    if (options.replicate) {
      uint64_t position = 0;
      Status r = options.replicate(records, &position);
      if (!r.ok()) {
        planner->Abandon();
        stat_failed.fetch_add(1);
        db_lock.unlock();
        for (auto& item : batch) item.cb(r, {});
        return;
      }
      wb.Put(cf[kCheckpoints], rocksdb::Slice(kReplicaCheckpoint.data(), kReplicaCheckpoint.size()),
             EncodeFixed64BE(position));
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    const auto start = std::chrono::steady_clock::now();
    rs = db->Write(wo, &wb);
    write_took = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
  }

  if (!rs.ok()) {
    planner->Abandon();
    healthy.store(false);
    next_recovery = std::chrono::steady_clock::now();  // the first try at once
    {
      std::lock_guard<std::mutex> lk(error_mu);
      last_error = rs.ToString();
    }
    stat_failed.fetch_add(1);
    Status err = Status::Unavailable("event log cannot accept writes: " + rs.ToString());
    db_lock.unlock();
    for (auto& item : batch) item.cb(err, {});
    return;
  }
  planner->Commit();
  uint64_t dups = 0;
  for (auto& item : batch)
    for (auto& o : item.outcomes) dups += o.duplicate ? 1 : 0;
  stat_dups.fetch_add(dups);
  if (!records.empty()) {
    if (write_took >= kSlowCommit) stat_slow.fetch_add(1);
    if (static_cast<uint64_t>(write_took.count()) > stat_slowest_us.load())
      stat_slowest_us.store(static_cast<uint64_t>(write_took.count()));
    stat_commits.fetch_add(1);
    stat_events.fetch_add(records.size());
    commit_us.Observe(static_cast<int64_t>(write_took.count()));
    commit_events.Observe(static_cast<int64_t>(records.size()));
    {
      std::lock_guard<std::mutex> lk(mu);
      committed.store(records.back().seq);
    }
    commit_cv.notify_all();
  }
  db_lock.unlock();
  for (auto& item : batch) item.cb(Status::OK(), item.outcomes);
}

void RocksDbEventLog::Unseal(Event* e) const {
  if (impl_->sealer) impl_->sealer->Open(e);
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
    decode_status = DecodeRecord(rec, &e);
    if (!decode_status.ok()) return false;
    Unseal(&e);
    out->push_back(std::move(e));
    return ++n < max;
  });
  return s.ok() ? decode_status : s;
}

Status RocksDbEventLog::ReadStream(std::string_view tenant, std::string_view stream,
                                   uint64_t from, size_t max, std::vector<Event>* out) const {
  std::shared_lock<std::shared_mutex> db_lock(impl_->db_mu);
  if (!impl_->db) return Status::Unavailable("event log is being reopened after a write failure");
  std::string prefix = StreamPrefix(tenant, stream);
  std::string upper = PrefixEnd(prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf[kStreams]));
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
    Status d = DecodeRecord(rec, &e);
    if (!d.ok()) return d;
    Unseal(&e);
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
                                           const std::vector<StateEntryRef>& entries) {
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
  std::string upper = PrefixEnd(start);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf[kConsumerState]));
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
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[kCheckpoints]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string name = it->key().ToString();
      if (std::find(keep.begin(), keep.end(), name) == keep.end()) wb.Delete(impl_->cf[kCheckpoints], name);
    }
    if (!it->status().ok()) return FromRocks(it->status());
    std::unique_ptr<rocksdb::Iterator> first(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[kConsumerState]));
    first->SeekToFirst();
    std::unique_ptr<rocksdb::Iterator> last(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[kConsumerState]));
    last->SeekToLast();
    if (first->Valid() && last->Valid())
      wb.DeleteRange(impl_->cf[kConsumerState], first->key(), last->key().ToString() + '\0');  // [first, last]
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
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[kCheckpoints]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (std::find(except.begin(), except.end(), it->key().ToString()) != except.end()) continue;
    if (it->value().size() != 8) continue;
    const uint64_t at = DecodeFixed64BE(it->value().data());
    if (at > 0 && at < seq) return false;  // 0: a store that follows no log position
  }
  return it->status().ok();
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
  s.slow_commits = impl_->stat_slow.load();
  s.slowest_commit_us = impl_->stat_slowest_us.load();
  s.crc32c_hardware = Crc32cServesRocksDb() && Crc32cHardware() ? 1 : 0;
  return s;
}

std::vector<EventLog::Counter> RocksDbEventLog::Counters() const {
  const Stats st = GetStats();
  return {{"group_commits", st.group_commits},           {"events_appended", st.events_appended},
          {"failed_commits", st.failed_commits},         {"slow_commits", st.slow_commits},
          {"slowest_commit_us", st.slowest_commit_us},   {"wal_trash_bytes", st.wal_trash_bytes},
          {"wals_deleted_whole", st.wals_deleted_whole}, {"crc32c_hardware", st.crc32c_hardware},
          {"high_water_seq", impl_->high_water_written.load()}};
}

void RocksDbEventLog::WriteMetrics(MetricsText* out) const {
  const Stats st = GetStats();
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  out->Family("dfm_event_log_last_seq", "gauge", "The sequence number of the log's last event.")
      .Sample({}, d(LastSequence()));
  out->Family("dfm_event_log_events_appended_total", "counter", "Events appended since the service started.")
      .Sample({}, d(st.events_appended));
  out->Family("dfm_event_log_duplicates_total", "counter",
              "Appends that were re-deliveries of an event already in the log.")
      .Sample({}, d(st.duplicates));
  out->Family("dfm_event_log_failed_commits_total", "counter", "Group commits whose write failed.")
      .Sample({}, d(st.failed_commits));
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
    out->Family("dfm_storage_free_bytes", "gauge", "Free bytes on the data directory's file system.")
        .Sample({}, d(free_bytes));
    out->Family("dfm_storage_min_free_bytes", "gauge",
                "storage.min_free_mb in bytes: below it the service is not ready.")
        .Sample({}, d(impl_->options.min_free_bytes));
  }
}

}  // namespace dfm
