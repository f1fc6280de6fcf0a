// The durable EventLog on RocksDB. Layout: docs/event-format.md ("column
// families").
//
// One writer thread owns all appends. It takes every AppendAsync queued while
// the previous write was syncing and commits them as one WriteBatch with
// sync = true (group commit): durable throughput grows with load instead of
// costing one fsync per event. Reads go straight to RocksDB and never see
// more than LastSequence().
//
// A read-only instance (Options::read_only) opens RocksDB as a secondary of a
// running service's directory: it never takes the primary's lock and sees
// new events after Refresh().
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "storage/append_planner.h"
#include "storage/event_log.h"
#include "storage/key_store.h"
#include "util/clock.h"
#include "util/metrics.h"

namespace rocksdb {
class DB;
class FileSystem;
}

namespace dfm {

struct RocksDbLogOptions {
  std::string path;  // created if missing (not in read-only mode)
  bool read_only = false;
  // Read-only mode: where RocksDB keeps the secondary's own files; a fresh
  // temporary directory when empty.
  std::string secondary_path;
  const Clock* clock = SystemClock::Instance();
  // Most events one group commit writes; the rest wait for the next one.
  size_t max_batch_events = 4096;
  // Health() is ResourceExhausted while the file system holding `path` has
  // less free space than this (0: not checked). Appends are still taken: the
  // point is to be taken out of traffic before writes start to fail.
  uint64_t min_free_bytes = 0;
  // Tests inject a file system that fails on demand; null for the default.
  std::shared_ptr<rocksdb::FileSystem> file_system;
  // Opening refuses (Corruption, saying what to do) a log that may have lost
  // acknowledged events: a WAL damaged before its end, or a log that ends
  // before its high-water mark (storage/high_water.h). A torn last record
  // (a write never acknowledged) is dropped as before. With `accept_loss`
  // (`dfm log recover`, the operator's choice) such a log opens with what
  // precedes the damage, and LostOnOpen() says what is gone.
  bool accept_loss = false;
  // Cluster mode (docs/scale-out.md): every group commit's new records are
  // handed to `replicate` on the writer thread before anything is written
  // here. Not OK: nothing is written and every append of the commit fails
  // with that status (the log stays usable). OK: the records are written
  // with `*position` (where the replica now ends) as the checkpoint
  // kReplicaCheckpoint, in the same atomic write. So this log never holds a
  // record its replica lacks. Empty: no replica (the embedded default).
  std::function<Status(const std::vector<PlannedRecord>& records, uint64_t* position)> replicate;
  // Seals personal data with keys from here (events/sealing.h,
  // docs/privacy.md), and opens what it reads; null: payloads are written
  // clear and sealed ones read as kSealed.
  std::shared_ptr<KeyStore> keys;
};

// The checkpoint that says where the replica of this log ends (cluster mode).
inline constexpr std::string_view kReplicaCheckpoint = "replica";

// One record as a replica holds it: the stored bytes and the encoded
// idempotency index key (IdempotencyIndexKey; empty for none).
struct ReplicaRecord {
  std::string record;
  std::string idempotency_key;
};

class RocksDbEventLog : public EventLog {
 public:
  static Status Open(const RocksDbLogOptions& options, std::unique_ptr<RocksDbEventLog>* out);
  ~RocksDbEventLog() override;

  // Finishes every append already queued, then stops the writer and writes
  // the high-water mark. Appends after Close() fail with Unavailable.
  // Idempotent.
  void Close();

  // The high-water mark read when the log was opened (0: none).
  uint64_t HighWaterAtOpen() const;
  // With options.accept_loss: the sequence numbers acknowledged once and
  // not in the log now, [first, last] (both 0: none), when the log ended
  // before its mark. A damaged WAL whose lost part the mark does not cover
  // shows as none: what RocksDB dropped after the damage has no count.
  std::pair<uint64_t, uint64_t> LostOnOpen() const;

  // Cluster mode: appends records another node wrote to the replica, as
  // they are, with `position` as kReplicaCheckpoint, synced. Each must be
  // the next: its sequence number LastSequence() + 1 and its previous hash
  // the head's (else Corruption, nothing written). Records at or below the
  // head are skipped (a replica read again from an older position). Called
  // while no append is under way (before the sync starts on this log).
  Status ImportRecords(const std::vector<ReplicaRecord>& records, uint64_t position);

  // Read-only mode: catches up with the primary's writes.
  Status Refresh();

  // Whether flushes and compactions write table files around the page
  // cache (O_DIRECT): a primary whose directory takes it.
  bool WritesTablesDirect() const;

  // Runs `fn` on RocksDB's handle while the log holds it open (storage/
  // backup.h takes checkpoints and backups through it); appends go on.
  // Unavailable once closed.
  Status WithDb(const std::function<Status(rocksdb::DB*)>& fn) const;

  // How often the writer's high-water mark is brought up to the log's head
  // (a loss of events older than this is found at the next open), and how
  // often free space is measured for Health().
  static constexpr std::chrono::milliseconds kHighWaterEvery{250};
  static constexpr std::chrono::milliseconds kDiskCheckEvery{1000};

  void AppendAsync(std::vector<EventDraft> drafts, AppendCallback cb) override;
  Status Unseal(Event* e) const override;
  std::string SubjectHashKey() const override;
  uint64_t LastSequence() const override;
  uint64_t WaitForSequence(uint64_t seq, std::chrono::milliseconds timeout) const override;
  Status Read(uint64_t from, size_t max, std::vector<Event>* out) const override;
  Status ReadStream(std::string_view tenant, std::string_view stream, uint64_t from, size_t max,
                    std::vector<Event>* out) const override;
  Status ScanRecords(uint64_t from,
                     const std::function<bool(uint64_t, std::string_view)>& fn) const override;
  Status LookupIdempotency(std::string_view tenant, std::string_view system, std::string_view key,
                           uint64_t* seq) const override;
  Status LookupEventId(const EventId& id, uint64_t* seq) const override;
  Status ReadCheckpoint(std::string_view consumer, uint64_t* seq) const override;
  Status CommitConsumer(std::string_view consumer, uint64_t seq,
                        const std::vector<StateOp>& ops) override;
  Status CommitConsumerDurable(std::string_view consumer, uint64_t seq,
                               const std::vector<StateOp>& ops) override;
  Status BulkCommitConsumer(std::string_view consumer, uint64_t seq,
                            const StateEntryRefs& entries) override;
  Status GetConsumerState(std::string_view consumer, std::string_view key,
                          std::string* value) const override;
  Status ScanConsumerState(
      std::string_view consumer, std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& fn) const override;
  Status DropConsumer(std::string_view consumer) override;

  // What the consumers derived from the records, out of the files: every
  // column family flushed (so the WAL that held their writes is no longer
  // needed and goes) and the consumers' state compacted to the bottom, so
  // rows deleted since (an erasure's) are in no table file either. The
  // file system may still keep the freed blocks.
  Status CompactDerived();
  // Drops every consumer's state and every checkpoint but `keep`'s, then
  // CompactDerived: the log keeps its records (sealed) and nothing derived
  // from them (a cluster partition this node no longer runs).
  Status DropDerived(const std::vector<std::string>& keep);
  // Whether every consumer that follows the log (a checkpoint above 0), but
  // `except`, has passed `seq`.
  bool CheckpointsReach(uint64_t seq, const std::vector<std::string>& except) const;


  // Reads flags only (never the disk): a failed write, the free space last
  // measured, closed. After a failed write the writer thread reopens
  // RocksDB by itself, backing off from 20 ms to 2 s between tries.
  Status Health() const override;
  // group_commits, events_appended, failed_commits, slow_commits,
  // slowest_commit_us, wal_trash_bytes, wals_deleted_whole and
  // crc32c_hardware, from GetStats(); high_water_seq, the mark last written.
  std::vector<Counter> Counters() const override;

  // A group commit whose synced write took this long or longer counts in
  // Stats::slow_commits: the latency goal's bound (p99 under 10 ms,
  // bench/README.md (b)).
  static constexpr std::chrono::microseconds kSlowCommit{10000};

  // Counters for /v1/health (through Counters()) and benchmarks.
  struct Stats {
    uint64_t group_commits = 0;
    uint64_t events_appended = 0;
    uint64_t duplicates = 0;
    uint64_t failed_commits = 0;
    // Appends refused because their idempotency key could not be looked
    // up (a read error, an entry that does not read): nothing is taken
    // twice, but nothing new under that key is taken either.
    uint64_t index_refused = 0;
    // Of the group commits, those whose synced write (RocksDB's write with
    // its WAL sync, as timed by the writer) took kSlowCommit or longer, and
    // the longest one's time. Mostly a disk that stalls, or else RocksDB
    // holding writes back (a full memtable, a new WAL); every append queued
    // meanwhile waits for it (bench/README.md (b)). A failed write counts
    // in failed_commits only.
    uint64_t slow_commits = 0;
    uint64_t slowest_commit_us = 0;
    // Obsolete WALs waiting to be cut (storage/wal_trash_fs.h), and WALs
    // unlinked whole instead (the backlog past 1 GiB, or a failure).
    uint64_t wal_trash_bytes = 0;
    uint64_t wals_deleted_whole = 0;
    // 1 when RocksDB's checksums run on the CPU's CRC-32C instruction
    // (storage/crc32c.h), else 0.
    uint64_t crc32c_hardware = 0;
  };
  Stats GetStats() const;
  // The log's families for GET /metrics (docs/metrics.md): events and
  // group commits, each commit's synced write time and size, the bytes its
  // files hold and, when storage.min_free_mb is set, free space. Reads a
  // few RocksDB properties: no scan, whatever the log holds.
  void WriteMetrics(MetricsText* out) const;

 private:
  struct Impl;
  explicit RocksDbEventLog(std::unique_ptr<Impl> impl);
  // A record decoded and its payload opened (Read, ReadStream); not OK
  // either when it does not decode or its key could not be read now.
  Status DecodeOpened(std::string_view record, Event* e) const;
  Status CommitConsumerWith(std::string_view consumer, uint64_t seq,
                            const std::vector<StateOp>& ops, bool sync);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfm
