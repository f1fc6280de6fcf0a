// Projections: folds over the event log into key/value state.
//
// A Projection is pure: Fold reads and writes a ProjectionState and nothing
// else, so the same fold runs live, in a rebuild from sequence 1, and in unit
// tests over an in-memory base. The ProjectionRunner (runner.h) feeds it the
// log and commits each batch's writes atomically with the checkpoint
// (EventLog::CommitConsumer): after a crash, state and checkpoint agree, and
// dropping the state and folding again from 1 gives the same state.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "storage/event_log.h"
#include "util/status.h"

namespace dfm {

// The committed state seen through this batch's own uncommitted writes.
class ProjectionState {
 public:
  // `base` reads committed state: OK + value, NotFound, or an error.
  using BaseReader = std::function<Status(std::string_view key, std::string* value)>;
  explicit ProjectionState(BaseReader base) : base_(std::move(base)) {}

  // nullopt when absent. A failed base read is remembered (status()) and
  // reads as absent; the runner then refuses to commit the batch.
  std::optional<std::string> Get(std::string_view key);
  void Put(std::string_view key, std::string value);
  void Erase(std::string_view key);
  // Adds `delta` to the decimal counter at `key` (absent = 0); erases it at 0.
  void Add(std::string_view key, int64_t delta);

  Status status() const { return status_; }
  bool empty() const { return overlay_.empty(); }
  size_t size() const { return overlay_.size(); }
  std::vector<StateOp> TakeOps();

 private:
  BaseReader base_;
  std::map<std::string, std::optional<std::string>, std::less<>> overlay_;
  Status status_;
};

class Projection {
 public:
  virtual ~Projection() = default;
  // The consumer name its state and checkpoint are kept under.
  virtual std::string name() const = 0;
  // Folds one event. Events of types it does not use are ignored. A payload
  // it cannot decode is skipped (the log is immutable; the event stays
  // visible to `dfm log dump`), never a reason to stop.
  virtual void Fold(const Event& e, ProjectionState* state) = 0;
};

}  // namespace dfm
