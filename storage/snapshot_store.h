// SnapshotStore: values kept beside the log that the log can give back
// (a contact actor's snapshot, sync/contact_snapshot.h), written off the
// caller's thread. Put returns at once; one thread writes what was put,
// in batches, as a consumer's state (EventLog::CommitConsumer: not synced,
// so a crash may take a value back to an older one or to none, which a
// reader must accept). Several Puts of one key before the thread writes
// leave only the last.
//
// Get sees the newest value put, written or not, so a reader on any
// thread never sees an older value than one put before it asked.
//
// Thread-safety: every method may be called from any thread. The
// destructor writes what is still waiting, then returns.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "storage/event_log.h"

namespace dfm {

class SnapshotStore {
 public:
  // REQUIRES: `log` outlives the store. `consumer`: the consumer whose
  // state holds the values.
  SnapshotStore(EventLog* log, std::string consumer);
  ~SnapshotStore();
  SnapshotStore(const SnapshotStore&) = delete;
  SnapshotStore& operator=(const SnapshotStore&) = delete;

  // Queues `value` for `key`; `seq` is the log position it reflects (the
  // consumer's checkpoint is the highest one written). A key erased is
  // never put again.
  void Put(std::string key, uint64_t seq, std::string value);
  // Queues the deletion of `key`, in place of a value waiting, and refuses
  // every later Put of it (a person erased: a snapshot of their state that
  // an actor still makes is not written back).
  void Erase(std::string key);
  // NotFound when nothing was ever put or written for `key`, or it was
  // erased.
  Status Get(const std::string& key, std::string* value) const;
  // Returns once everything put before the call is written, or its write
  // refused (tests, stop).
  void Flush();
  // Values written, and writes the log refused (each retried with the
  // next batch), since the store was made.
  uint64_t written() const;
  uint64_t failed() const;

 private:
  void Loop();

  EventLog* log_;
  const std::string consumer_;
  mutable std::mutex mu_;
  std::condition_variable cv_, flushed_;
  // Put (or, nullopt, erased), not yet taken by the thread; taken, being written.
  std::map<std::string, std::optional<std::string>> waiting_, writing_;
  std::set<std::string> erased_;  // never put again
  uint64_t max_seq_ = 0;
  uint64_t puts_ = 0, done_ = 0;  // Flush waits until done_ reaches puts_ at its call
  uint64_t written_ = 0, failed_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dfm
