// Feeds Projections the log and commits each one's state with its checkpoint.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "projections/projection.h"
#include "storage/event_log.h"

namespace dfm {

// One runner serves any number of projections with one read of the log: each
// record is read once, decoded once if some projection uses its type
// (Projection::Uses), and folded into every projection that uses it and
// whose checkpoint is below it. Each projection keeps its own checkpoint, committed
// atomically with its own writes (EventLog::CommitConsumer), so projections
// added later, or rebuilt, catch up from where they are.
//
// Commits: CatchUp() commits every projection after each batch. The
// background loop (Start) commits a projection when a batch gave it writes,
// and otherwise moves its checkpoint at most once per `checkpoint_interval`
// (and at Stop): a checkpoint that lags only re-folds events that changed
// nothing, and no write competes with the log's synced appends for events
// the projections do not use.
class ProjectionRunner {
 public:
  struct Options {
    size_t batch = 2048;  // events per read and per commit
    // Background loop: at most one read per `min_read_interval`, so a busy
    // log is read in batches rather than once per group commit.
    std::chrono::milliseconds min_read_interval{5};
    std::chrono::milliseconds checkpoint_interval{1000};
    // Rebuild: each projection's state is kept in memory (a StateTable,
    // roughly 100 bytes a key) and committed in bulk with its checkpoint
    // (EventLog::BulkCommitConsumer) at the end, or earlier when it holds
    // this many keys; after such a spill, keys not in memory are read back.
    // At the default, four projections may hold ~1.6 GB between them,
    // besides the ring of batches (four of `batch` events).
    size_t rebuild_spill_keys = 1 << 22;
    // Null, or a flag whose turning true ends CatchUp and Rebuild between
    // two batches (a partition stopping while it starts: CatchUp then
    // returns OK short of the head, a rebuild Unavailable). The folding
    // Start runs goes on until Stop.
    const std::atomic<bool>* cancel = nullptr;
  };
  // REQUIRES: log and projections outlive the runner; names are distinct.
  ProjectionRunner(EventLog* log, std::vector<Projection*> projections, Options options);
  ProjectionRunner(EventLog* log, std::vector<Projection*> projections)
      : ProjectionRunner(log, std::move(projections), Options()) {}
  ProjectionRunner(EventLog* log, Projection* projection, size_t batch = 2048);
  ~ProjectionRunner();

  // Folds from the checkpoints up to `until` (the log head when 0), one
  // committed batch at a time. `progress(seq)` after each batch. A
  // projection whose state is of another layout (Projection::layout) is
  // first rebuilt (Rebuild, batches of kRebuildBatch) up to the head.
  Status CatchUp(uint64_t until = 0, const std::function<void(uint64_t)>& progress = {});

  // Events per batch of a rebuild: each thread of its pipeline runs long
  // between hand-offs (~10% faster than 8,192, bench/README.md (f)); a
  // ring of four of them holds ~150 MB.
  static constexpr size_t kRebuildBatch = 32768;

  // Drops the projections' state and checkpoints, then folds from sequence 1
  // up to the head as it is when called: one thread reads batches ahead,
  // a second decodes them, and each projection folds them on its own thread
  // (they share nothing), so a rebuild uses every core. See
  // Options::rebuild_spill_keys. Stopped half-way, it leaves consistent
  // state (each commit carries its checkpoint) to catch up from, and
  // returns Unavailable.
  Status Rebuild(const std::function<void(uint64_t)>& progress = {});

  // Folds new events in the background as they are appended, from each
  // projection's checkpoint (state of another layout is dropped first,
  // Projection::layout); when a checkpoint cannot be read, nothing runs and
  // the error is returned. Stop() ends the background folding (an
  // interrupted batch is not committed) and commits the checkpoints of
  // projections with nothing left to write.
  Status Start();
  void Stop();

  // The lowest folded sequence number over the projections (folded and
  // committed, or folded with nothing to commit).
  uint64_t checkpoint() const { return checkpoint_.load(); }
  // The outcome of the last background fold (or of Stop's last commit):
  // an error until a later fold succeeds.
  Status status() const;

 private:
  struct Member {
    Projection* projection;
    std::string name;
    uint64_t folded = 0;     // every event <= folded is in the committed state
    uint64_t committed = 0;  // the checkpoint stored in the log
  };
  struct Batch;
  struct Pipeline;  // Rebuild's threads' shared state (runner_internal.h)
  // Reads the events after `from - 1` up to `until`, at most options_.batch.
  void ReadBatch(uint64_t from, uint64_t until, Batch* b) const;
  // Adds one record to `b` (kept when some member uses its type), its
  // payload opened and decoded unless !decode (then DecodeBatch does).
  void AddRecord(uint64_t seq, std::string_view record, Batch* b, bool decode) const;
  // Opens item k's payload when sealed (the log's Unseal; a key not read
  // now is kept in b->opened) and decodes it.
  void Open(Batch* b, size_t k) const;
  void DecodeBatch(Batch* b) const;
  // Rebuild's stages (runner_rebuild.cc), each on a thread of its own: the
  // log's records into batches, their payloads decoded, member i's fold
  // (with its state spilled by CommitRebuilt past rebuild_spill_keys).
  void RebuildRead(Pipeline* p, uint64_t until) const;
  void RebuildDecode(Pipeline* p) const;
  void RebuildFold(Pipeline* p, size_t i, uint64_t until);
  Status FoldRebuilt(Pipeline* p, size_t i, uint64_t until, ProjectionState* state,
                     bool* base_empty);
  Status CommitRebuilt(Member* m, ProjectionState* state, bool* base_empty);
  Status Run(uint64_t until, bool lazy, const std::function<void(uint64_t)>& progress);
  Status Commit(Member* m, std::vector<StateOp> ops);
  // Sets m's folded and committed sequence from its checkpoint. State of
  // another layout (Projection::layout) counts as none: with `stale` null
  // it is dropped here; otherwise *stale says so and the caller drops it
  // (CatchUp's rebuild does, so it is not dropped twice).
  Status LoadCheckpoint(Member* m, bool* stale = nullptr);
  void PublishCheckpoint();

  EventLog* log_;
  std::vector<Member> members_;
  Options options_;
  std::chrono::steady_clock::time_point last_commit_{};
  std::atomic<uint64_t> checkpoint_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  Status status_;
};

// Reads a projection's committed state (for queries and the router).
inline Status ReadProjection(const EventLog* log, const Projection& p, std::string_view key,
                             std::string* value) {
  return log->GetConsumerState(p.name(), key, value);
}

}  // namespace dfm
