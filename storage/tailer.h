// LogTailer: a tailing subscription. It delivers every event with
// seq >= `from` to a handler, in order, on its own thread, waiting for new
// appends once it has caught up. Consumers (projections, actors) use it and
// keep their checkpoint with EventLog::CommitConsumer.
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
