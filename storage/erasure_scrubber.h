// ErasureScrubber: after an erasure, what the log's consumers derived from
// the person (the router's index, the projections' rows, in clear) leaves
// the log's files once they have passed the erasure: it waits, at most
// `wait`, until every consumer following the log has passed the erasure's
// sequence number, then RocksDbEventLog::CompactDerived. On a thread of its
// own, so that an erasure's answer never waits on it.
//
// Thread-safety: ScrubAfter from any thread; Stop (or the destructor) ends
// a wait at once and joins, and must come before the log closes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "storage/rocksdb_event_log.h"
#include "util/status.h"

namespace dfm {

class ErasureScrubber {
 public:
  // `report` is told of every compaction that failed (or came after a wait
  // the consumers outlasted: Unavailable).
  using Report = std::function<void(uint64_t seq, const Status& s)>;
  ErasureScrubber(RocksDbEventLog* log, Report report,
                  std::chrono::milliseconds wait = std::chrono::seconds(30));
  ~ErasureScrubber();
  ErasureScrubber(const ErasureScrubber&) = delete;
  ErasureScrubber& operator=(const ErasureScrubber&) = delete;

  // The erasure at `seq` is durable: scrub once the consumers pass it.
  void ScrubAfter(uint64_t seq);
  void Stop();

 private:
  void Loop();

  RocksDbEventLog* const log_;
  const Report report_;
  const std::chrono::milliseconds wait_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t seq_ = 0;   // GUARDED_BY(mu_); the newest erasure asked, 0: none
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace dfm
