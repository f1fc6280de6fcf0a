#include "projections/runner.h"

#include <mutex>

#include "events/codec.h"

namespace dfm {

ProjectionRunner::ProjectionRunner(EventLog* log, Projection* projection, size_t batch)
    : log_(log), projection_(projection), batch_(batch) {}

ProjectionRunner::~ProjectionRunner() { Stop(); }

Status ProjectionRunner::CatchUp(uint64_t until, const std::function<void(uint64_t)>& progress) {
  uint64_t cp = 0;
  Status s = log_->ReadCheckpoint(projection_->name(), &cp);
  if (!s.ok()) return s;
  checkpoint_.store(cp);
  if (until == 0) until = log_->LastSequence();
  const std::string name = projection_->name();
  ProjectionState state([this, &name](std::string_view key, std::string* value) {
    return log_->GetConsumerState(name, key, value);
  });
  while (cp < until && !stop_.load()) {
    uint64_t last = cp;
    size_t n = 0;
    s = log_->ScanRecords(cp + 1, [&](uint64_t seq, std::string_view record) {
      if (seq > until) return false;
      Event e;
      if (DecodeRecord(record, &e).ok()) projection_->Fold(e, &state);
      last = seq;
      return ++n < batch_;
    });
    if (!s.ok()) return s;
    if (!state.status().ok()) return state.status();
    if (last == cp) break;  // nothing more to read
    s = log_->CommitConsumer(name, last, state.TakeOps());
    if (!s.ok()) return s;
    cp = last;
    checkpoint_.store(cp);
    if (progress) progress(cp);
  }
  return Status::OK();
}

Status ProjectionRunner::Rebuild(const std::function<void(uint64_t)>& progress) {
  Status s = log_->DropConsumer(projection_->name());
  if (!s.ok()) return s;
  checkpoint_.store(0);
  return CatchUp(0, progress);
}

void ProjectionRunner::Start() {
  stop_.store(false);
  thread_ = std::thread([this] {
    while (!stop_.load()) {
      Status s = CatchUp();
      if (!s.ok()) {
        std::lock_guard<std::mutex> lk(mu_);
        status_ = s;
      }
      log_->WaitForSequence(checkpoint_.load() + 1, std::chrono::milliseconds(100));
    }
  });
}

void ProjectionRunner::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  stop_.store(false);  // CatchUp and Rebuild work again after Stop
}

Status ProjectionRunner::status() const {
  std::lock_guard<std::mutex> lk(mu_);
  return status_;
}

}  // namespace dfm
