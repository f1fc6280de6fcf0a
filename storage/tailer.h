// LogTailer: the log's tailing subscription (EventLog::WaitForSequence and
// Read from a position) for a handler. It delivers every event with
// seq >= `from` to the handler, in order, on its own thread, waiting for
// new appends once it has caught up; the handler keeps its checkpoint with
// EventLog::CommitConsumer. The service's own consumers make the same two
// calls directly: the projections' runner reads batches of records
// (projections/runner.h) and the sync engine wakes the router when the log
// grows (actors/engine.h).
//
// The handler returns false to stop the tailer. Stop() may be called from
// any thread but the handler's; it returns once the thread has ended.
#pragma once

#include <atomic>
#include <functional>
#include <thread>

#include "storage/event_log.h"

namespace dfm {

class LogTailer {
 public:
  using Handler = std::function<bool(const Event&)>;
  // REQUIRES: `log` outlives the tailer.
  LogTailer(const EventLog* log, uint64_t from, Handler handler, size_t batch = 512);
  ~LogTailer();
  void Stop();
  // Next sequence number the handler will see.
  uint64_t position() const { return next_.load(); }
  // The status that stopped the tailer early (a failed read); OK otherwise.
  Status status() const;

 private:
  void Run();
  const EventLog* log_;
  Handler handler_;
  size_t batch_;
  std::atomic<uint64_t> next_;
  std::atomic<bool> stop_{false};
  Status status_;
  std::thread thread_;
};

}  // namespace dfm
