// MemoryEventLog: the EventLog contract kept in memory, for unit tests of
// everything that sits on the log. Records are encoded and hash-chained
// exactly as RocksDbEventLog stores them; AppendAsync calls back at once on
// the caller's thread (StallWrites() holds them). FailWrites() makes appends
// fail as a full disk would;
// FailLookups() makes idempotency lookups (reads and appends) fail as an
// unreadable log would;
// FailReads() and FailStreamReads() do the same to reads by sequence
// (Read) and by stream (ReadStream, ScanStream); FailStateReads() to reads
// of one consumer's state (GetConsumerState, ScanConsumerState).
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "storage/append_planner.h"
#include "storage/event_log.h"

namespace dfm {

class MemoryEventLog : public EventLog {
 public:
  explicit MemoryEventLog(const Clock* clock = SystemClock::Instance());

  // Seals payloads with keys from `keys` from now on (events/sealing.h).
  void SetKeyStore(std::shared_ptr<KeyStore> keys);
  Status Unseal(Event* e) const override;
  std::string SubjectHashKey() const override;

  void FailWrites(bool fail);
  void FailLookups(bool fail);
  // LookupIdempotency of keys starting with `prefix` fails while `fail`
  // (the lookups of appends do not).
  void FailLookupsOf(std::string_view prefix, bool fail);
  void FailReads(bool fail);
  void FailStreamReads(bool fail);
  // Reads of one stream (ReadStream, ScanStream) fail (Corruption) while
  // `fail`, as a damaged record or key block would make them.
  void FailStreamReadsOf(std::string_view stream, bool fail);
  // ReadStream calls of `stream` so far.
  uint64_t StreamReads(std::string_view stream) const;
  // LookupIdempotency calls so far (the appends' own lookups not counted).
  uint64_t Lookups() const;
  // Reads of `consumer`'s state fail (Unavailable) while `fail`.
  void FailStateReads(std::string_view consumer, bool fail);
  // The next `appends` appends go through, then appends fail as with
  // FailWrites(true) (FailWrites(false) ends it).
  void FailWritesAfter(uint64_t appends);
  // StallWrites(true): AppendAsync calls are held, neither written nor
  // answered, as behind a writer stalled on a slow disk; ReleaseStalled()
  // carries out the oldest (written, or refused while writes fail) and
  // answers it. Calls behind held ones wait their turn after
  // StallWrites(false) too. DropStalled() forgets the held calls unanswered,
  // as a process killed before its group commit would. The blocking Append
  // must not be called while calls are held (it would wait for ever).
  void StallWrites(bool stall);
  bool ReleaseStalled();  // false when none was held
  size_t Stalled() const;
  void DropStalled();
  // AppendAsync calls so far, refused ones included.
  uint64_t AppendCalls() const;
  // GetConsumerState calls so far for `consumer`'s state.
  uint64_t ConsumerStateReads(std::string_view consumer) const;
  // Test hook: replaces the stored bytes of record `seq` (to test VerifyChain).
  void CorruptRecordForTest(uint64_t seq, std::string bytes);

  void AppendAsync(std::vector<EventDraft> drafts, AppendCallback cb) override;
  uint64_t LastSequence() const override;
  uint64_t WaitForSequence(uint64_t seq, std::chrono::milliseconds timeout) const override;
  Status Read(uint64_t from, size_t max, std::vector<Event>* out) const override;
  Status ReadStream(std::string_view tenant, std::string_view stream, uint64_t from, size_t max,
                    std::vector<Event>* out) const override;
  Status ScanRecords(uint64_t from,
                     const std::function<bool(uint64_t, std::string_view)>& fn) const override;
  Status LookupIdempotency(std::string_view tenant, std::string_view system,
                           std::string_view key, uint64_t* seq) const override;
  Status LookupEventId(const EventId& id, uint64_t* seq) const override;
  Status ReadCheckpoint(std::string_view consumer, uint64_t* seq) const override;
  Status CommitConsumer(std::string_view consumer, uint64_t seq,
                        const std::vector<StateOp>& ops) override;
  Status CommitConsumerDurable(std::string_view consumer, uint64_t seq,
                               const std::vector<StateOp>& ops) override;
  Status GetConsumerState(std::string_view consumer, std::string_view key,
                          std::string* value) const override;
  Status ScanConsumerState(
      std::string_view consumer, std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& fn) const override;
  Status DropConsumer(std::string_view consumer) override;
  Status Health() const override;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  AppendPlanner planner_;
  std::shared_ptr<KeyStore> keys_;
  std::unique_ptr<PayloadSealer> sealer_;
  void AppendNow(std::vector<EventDraft> drafts, AppendCallback cb);

  bool fail_writes_ = false;
  bool stall_writes_ = false;
  std::deque<std::pair<std::vector<EventDraft>, AppendCallback>> stalled_;
  bool fail_lookups_ = false;
  std::string failing_lookups_;  // FailLookupsOf's prefix, when not empty
  bool fail_reads_ = false;
  bool fail_stream_reads_ = false;
  std::set<std::string, std::less<>> failing_streams_;
  mutable std::map<std::string, uint64_t, std::less<>> stream_reads_;  // by ReadStream
  mutable uint64_t lookups_ = 0;
  std::set<std::string, std::less<>> failing_state_;  // consumers whose state reads fail
  uint64_t append_calls_ = 0;
  mutable std::map<std::string, uint64_t, std::less<>> state_reads_;  // by consumer
  uint64_t fail_after_ = 0;  // appends left before failing; 0: FailWritesAfter not in force
  std::vector<std::string> records_;  // records_[seq - 1]
  std::map<std::pair<std::string, std::string>, std::vector<uint64_t>> streams_;
  std::unordered_map<std::string, std::pair<uint64_t, EventId>> idempotency_;
  std::map<EventId, uint64_t> event_ids_;
  std::map<std::string, uint64_t, std::less<>> checkpoints_;
  std::map<std::string, std::map<std::string, std::string, std::less<>>, std::less<>> state_;
};

}  // namespace dfm
