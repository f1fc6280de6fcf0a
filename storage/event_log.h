// EventLog: the append-only, hash-chained log that is DF-Middleware's only
// source of truth. Two implementations: RocksDbEventLog (durable) and
// MemoryEventLog (unit tests). Both give the same answers to the same calls.
//
// Thread-safety: every method may be called from any thread.
//
// Durability contract: an append's callback reports success only after the
// events are durable (for RocksDB: the WAL is synced). Appends that arrive
// while a sync is under way are written together by the next one (group
// commit). Events are never changed once appended.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "util/huge_pages.h"
#include "util/status.h"

namespace dfm {

struct AppendOutcome {
  uint64_t seq = 0;
  EventId id;
  bool duplicate = false;  // an event with the same idempotency key existed: seq/id are its
};

// Called exactly once per AppendAsync, on a log-internal thread. It must not
// block for long: the next group commit waits for it.
using AppendCallback = std::function<void(const Status&, const std::vector<AppendOutcome>&)>;

// One change to a consumer's own state, committed with its checkpoint.
struct StateOp {
  std::string key;
  std::string value;
  bool erase = false;
};

// One entry of a consumer's state by reference: sets `key` to `value`, or
// erases it.
struct StateEntryRef {
  std::string_view key;
  std::string_view value;
  bool erase = false;
};
// A rebuild's are millions: on huge pages (util/huge_pages.h).
using StateEntryRefs = std::vector<StateEntryRef, HugePageAllocator<StateEntryRef>>;

// What `dfm log verify` / `dfm audit verify` report.
struct ChainReport {
  bool ok = true;
  uint64_t count = 0;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  Sha256Digest head_hash{};    // hash of the last record read
  uint64_t first_bad_seq = 0;  // set when !ok
  std::string problem;         // set when !ok
};

class EventLog {
 public:
  virtual ~EventLog() = default;

  // Appends `drafts` atomically: all of them become durable, or none does.
  // A draft with an idempotency key that is already in the log (or earlier
  // in the same call) is not appended; its outcome is the existing event
  // with duplicate = true. On failure (e.g. the disk is full) the status is
  // not OK, the outcomes are empty and nothing was appended.
  virtual void AppendAsync(std::vector<EventDraft> drafts, AppendCallback cb) = 0;

  // Blocking forms of AppendAsync.
  Status Append(std::vector<EventDraft> drafts, std::vector<AppendOutcome>* outcomes);
  Status Append(EventDraft draft, AppendOutcome* outcome);

  // Opens a payload read sealed (events/sealing.h) with the log's key
  // store: kOpened, or kErased when its key was destroyed. A no-op for a
  // log without a key store. Read, ReadStream, ScanStream and VerifyChain's
  // visit open what they return; a caller decoding ScanRecords' bytes
  // itself calls this. Unavailable (e left kSealed) when the key store
  // could not be read now: Read, ReadStream and ScanStream then fail, and a
  // caller of Unseal must not take the event as unreadable for good.
  // VerifyChain's visit gets the event as it is (left kSealed).
  virtual Status Unseal(Event* e) const {
    (void)e;
    return Status::OK();
  }
  // The log's key store's keyed-hash secret (KeyStore::HashKey: what
  // sync/erasure.h's SubjectHash keys), "" for a log without a key store.
  virtual std::string SubjectHashKey() const { return {}; }

  // Highest durable sequence number; 0 for an empty log. Sequence numbers
  // start at 1 and have no gaps.
  virtual uint64_t LastSequence() const = 0;

  // Blocks until LastSequence() >= seq or `timeout` passed; returns LastSequence().
  // With Read (or ScanRecords) from a position, this is the log's tailing
  // subscription: a consumer reads from its checkpoint + 1 and waits here
  // once it has caught up. The projections' runner tails this way on its own
  // thread; the sync engine waits here on its own thread and wakes the
  // router, which reads from its position on a CAF worker (actors/
  // engine.h). LogTailer (storage/tailer.h) packages it for a handler.
  virtual uint64_t WaitForSequence(uint64_t seq, std::chrono::milliseconds timeout) const = 0;

  // Appends to *out up to `max` events with seq >= from, ascending.
  virtual Status Read(uint64_t from, size_t max, std::vector<Event>* out) const = 0;

  // Like Read, restricted to one (tenant, stream).
  virtual Status ReadStream(std::string_view tenant, std::string_view stream, uint64_t from,
                            size_t max, std::vector<Event>* out) const = 0;

  // Visits stored records (exact bytes) with seq >= from in order until fn
  // returns false.
  virtual Status ScanRecords(uint64_t from,
                             const std::function<bool(uint64_t, std::string_view)>& fn) const = 0;

  // The event at `seq` as its record holds it, a sealed payload not opened
  // (no key is asked for): for what its header says (id, type, times).
  // NotFound when the log has no such event.
  Status ReadUnopened(uint64_t seq, Event* e) const;

  // NotFound when absent.
  virtual Status LookupIdempotency(std::string_view tenant, std::string_view system,
                                   std::string_view key, uint64_t* seq) const = 0;
  virtual Status LookupEventId(const EventId& id, uint64_t* seq) const = 0;

  // Consumers (projections, actors) keep their own state beside the log and
  // commit it together with the sequence number they have processed, so the
  // two can never disagree. A consumer that has committed nothing is at 0.
  virtual Status ReadCheckpoint(std::string_view consumer, uint64_t* seq) const = 0;
  // Not synced: the state is rebuildable from the log, so a crash may only
  // take it back to an older (consistent) commit.
  virtual Status CommitConsumer(std::string_view consumer, uint64_t seq,
                                const std::vector<StateOp>& ops) = 0;
  // The same, durable when it returns (synced): for state the log cannot
  // give back, such as a refreshed OAuth grant (the old refresh token is
  // spent) or a backfill's position.
  virtual Status CommitConsumerDurable(std::string_view consumer, uint64_t seq,
                                       const std::vector<StateOp>& ops) = 0;
  // CommitConsumer for a large batch (a rebuild's state): `entries` sorted
  // by key, each key once, committed atomically with `seq`, not synced. The
  // RocksDB log writes a big batch as a table file and adds it in one step
  // instead of inserting each key. This default commits through
  // CommitConsumer.
  virtual Status BulkCommitConsumer(std::string_view consumer, uint64_t seq,
                                    const StateEntryRefs& entries);
  virtual Status GetConsumerState(std::string_view consumer, std::string_view key,
                                  std::string* value) const = 0;
  virtual Status ScanConsumerState(
      std::string_view consumer, std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& fn) const = 0;
  // Removes a consumer's state and checkpoint (before a rebuild).
  virtual Status DropConsumer(std::string_view consumer) = 0;

  // OK while the log accepts writes and has room. ResourceExhausted while it
  // still accepts writes but is short of room (its disk nearly full: not
  // ready for traffic, yet nothing is refused). Otherwise (Unavailable) why
  // it cannot write.
  virtual Status Health() const = 0;

  // A counter for /v1/health (`parts.event_log`); `name` is a string
  // literal.
  struct Counter {
    std::string_view name;
    uint64_t value;
  };
  // The log's own counters since it was opened (and gauges of what it holds
  // now, such as bytes waiting to be deleted), always the same names in the
  // same order. None by default.
  virtual std::vector<Counter> Counters() const { return {}; }

  // Visits the events of one (tenant, stream) with seq >= from in order, in
  // batches, until `fn` returns false.
  Status ScanStream(std::string_view tenant, std::string_view stream,
                    const std::function<bool(const Event&)>& fn, uint64_t from = 1) const;
  // Appends the whole stream to *out.
  Status ReadWholeStream(std::string_view tenant, std::string_view stream,
                         std::vector<Event>* out) const;

  // Walks the hash chain from the first record: every record decodes, its
  // sequence number follows the previous one and its prev_hash is the
  // SHA-256 of the previous record.
  // `visit`, when given, sees each record of the intact prefix, decoded, in
  // order (a caller that also needs the events reads the log once).
  ChainReport VerifyChain(const std::function<void(const Event&)>& visit = {}) const;
};

}  // namespace dfm
