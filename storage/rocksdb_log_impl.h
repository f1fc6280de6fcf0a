// The insides of RocksDbEventLog (storage/rocksdb_event_log.h), shared by
// its parts: rocksdb_event_log.cc (open, append, the writer),
// rocksdb_log_reads.cc (records, lookups, health and metrics) and
// rocksdb_consumer_state.cc (checkpoints and consumer state). Not for
// other users.
#pragma once

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
#include "storage/rocksdb_event_log.h"
#include "storage/sealer.h"
#include "storage/stream_keys.h"
#include "storage/wal_trash_fs.h"
#include "util/burst.h"
#include "util/coding.h"
#include "util/joining_thread.h"

namespace dfm {
namespace rocksdb_log {

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
inline const char* const kCfNames[kNumCf] = {
    "default", "events", "streams", "idempotency", "event_ids", "checkpoints", "consumer_state"};
inline constexpr char kLayoutKey[] = "layout_version";
inline constexpr char kLayoutVersion[] = "1";

inline Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound(s.ToString());
  if (s.IsCorruption()) return Status::Corruption(s.ToString());
  if (s.IsIOError() || s.IsNoSpace()) return Status::IOError(s.ToString());
  return Status::IOError(s.ToString());
}

inline std::string ConsumerKey(std::string_view consumer, std::string_view key) {
  std::string k;
  PutLengthPrefixed(&k, consumer);
  k.append(key.data(), key.size());
  return k;
}

// The smallest key greater than every key starting with `prefix`; empty when
// there is none (prefix is all 0xFF).
inline std::string PrefixEnd(std::string prefix) {
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
  Status refused;  // not OK: its plan failed (the group's other calls go on)
};

// What to do about a log that may have lost acknowledged events.
inline constexpr char kRecoverHint[] =
    "Restore the data directory from a backup, or run `dfm log recover` to start from what "
    "precedes the damage (the events after it are lost; the loss is recorded in the log)";

// An iterator over the keys of `cf` that begin with `prefix`, bounded
// above by PrefixEnd(prefix); it owns its bound (so it is neither copied
// nor moved: the bound's slice points into it). Seek from `prefix` (or
// past it) to start.
struct PrefixIterator {
  PrefixIterator(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::string_view prefix)
      : upper(PrefixEnd(std::string(prefix))), upper_slice(upper) {
    rocksdb::ReadOptions ro;
    if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
    it.reset(db->NewIterator(ro, cf));
  }
  PrefixIterator(const PrefixIterator&) = delete;
  PrefixIterator& operator=(const PrefixIterator&) = delete;
  rocksdb::Iterator* operator->() const { return it.get(); }

  std::string upper;
  rocksdb::Slice upper_slice;
  std::unique_ptr<rocksdb::Iterator> it;
};

// Free bytes of the file system holding `path`; nullopt when unknown.
inline std::optional<uint64_t> FreeBytes(const std::string& path) {
  struct statvfs fs;
  if (statvfs(path.c_str(), &fs) != 0) return std::nullopt;
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

}  // namespace rocksdb_log

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
  // A group commit's rows (writer thread only), cleared and reused: a
  // fresh buffer each commit was new pages for the allocator to fault in
  // (2% of ingest's CPU on this machine kind).
  rocksdb::WriteBatch commit_rows;

  // A planner that continues from (last, head), sealing with `sealer`.
  void MakePlanner(uint64_t last, const Sha256Digest& head);
  std::atomic<uint64_t> committed{0};

  mutable std::mutex mu;
  mutable std::condition_variable queue_cv;   // writer waits for work
  mutable std::condition_variable commit_cv;  // readers wait for new events
  std::deque<rocksdb_log::QueuedAppend> queue;
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

  std::atomic<uint64_t> stat_commits{0}, stat_events{0}, stat_dups{0}, stat_failed{0},
      stat_index_refused{0};
  std::atomic<uint64_t> stat_slow{0}, stat_slowest_us{0};  // written by the writer thread only
  Histogram commit_us{Histogram::LatencyBoundsUs()};       // each group commit's synced write
  Histogram commit_events{Histogram::CountBounds()};       // events in it

  ~Impl();

  // RocksDbEventLog::Open's steps. Configure: the database's and its
  // column families' options from `options`. OpenSecondary: a read-only
  // open that follows a primary. OpenWritable: the primary, checked
  // (CheckAcknowledged, CheckLayout), cleaned (RemoveStaleFiles) and
  // running (StartThreads: the writer and the maintenance thread).
  void Configure();
  Status OpenSecondary();
  Status OpenWritable();
  // Corruption unless `options.accept_loss`, when the log ends before
  // the high-water mark (acknowledged events lost); then it records the
  // loss and moves the mark back.
  Status CheckAcknowledged();
  // The table files a crashed BulkCommitConsumer left, and a probe file
  // a crash in TakesDirectWrites left (never data).
  void RemoveStaleFiles();
  // Writes the storage layout version into a new log; Corruption for an
  // unknown one.
  Status CheckLayout();
  void StartThreads();

  // The chain's last sequence number and its record's hash (0 and zeros
  // for an empty log).
  Status LoadHead(uint64_t* last_seq, Sha256Digest* head);
  // Takes `raw` as the open database and its chain head as `committed`
  // (and *last_seq, *head).
  Status TakeDb(rocksdb::DB* raw, uint64_t* last_seq, Sha256Digest* head);
  std::string LastError();
  void CloseDb();
  // Opens the primary and loads the chain head into a fresh planner.
  // REQUIRES: db_mu held exclusively (or no other thread running).
  Status OpenPrimary();
  // After a failed write: RocksDB's own Resume(), else a reopen (WAL write
  // errors are not resumable). Either way the planner restarts from what is
  // durable. OK once the log accepts writes again.
  Status TryRecover();

  void WriterLoop();
  // One group commit: plans the batch's drafts (PlanBatch), writes their
  // records synced (WriteRecords: replicated first when options.replicate
  // is set; a failed RocksDB write marks the log unhealthy), counts it
  // (NoteCommitted), then answers every append of the batch.
  void CommitBatch(std::vector<rocksdb_log::QueuedAppend>& batch);
  // Plans each append of the batch in turn; one whose payload cannot be
  // sealed is marked refused (and answered so), the others are planned.
  void PlanBatch(std::vector<rocksdb_log::QueuedAppend>& batch,
                 std::vector<PlannedRecord>* records);
  Status WriteRecords(const std::vector<PlannedRecord>& records, std::chrono::microseconds* took);
  void NoteCommitted(const std::vector<rocksdb_log::QueuedAppend>& batch,
                     const std::vector<PlannedRecord>& records, std::chrono::microseconds took);
  void MaintenanceLoop();
  // Writes the mark when the log has moved past it.
  void UpdateHighWater();
  void MeasureFreeSpace();
};

}  // namespace dfm
