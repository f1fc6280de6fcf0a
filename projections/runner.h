// Feeds a Projection the log and commits its state with its checkpoint.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "projections/projection.h"
#include "storage/event_log.h"

namespace dfm {

class ProjectionRunner {
 public:
  // REQUIRES: log and projection outlive the runner.
  ProjectionRunner(EventLog* log, Projection* projection, size_t batch = 2048);
  ~ProjectionRunner();

  // Folds from the checkpoint up to `until` (the log head when 0), one
  // committed batch at a time. `progress(seq)` after each batch.
  Status CatchUp(uint64_t until = 0, const std::function<void(uint64_t)>& progress = {});

  // Drops the state and checkpoint, then folds from sequence 1.
  Status Rebuild(const std::function<void(uint64_t)>& progress = {});

  // Folds new events in the background as they are appended. Stop() ends
  // the background folding (an interrupted batch is not committed).
  void Start();
  void Stop();

  uint64_t checkpoint() const { return checkpoint_.load(); }
  Status status() const;

 private:
  EventLog* log_;
  Projection* projection_;
  size_t batch_;
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
