#include "projections/runner.h"

#include <algorithm>
#include <mutex>

#include "events/codec.h"

namespace dfm {

ProjectionRunner::ProjectionRunner(EventLog* log, std::vector<Projection*> projections,
                                   Options options)
    : log_(log), options_(options) {
  options_.batch = std::max<size_t>(1, options_.batch);
  for (Projection* p : projections) members_.push_back(Member{p, p->name()});
}

ProjectionRunner::ProjectionRunner(EventLog* log, Projection* projection, size_t batch)
    : ProjectionRunner(log, std::vector<Projection*>{projection}, [batch] {
        Options o;
        o.batch = batch;
        return o;
      }()) {}

ProjectionRunner::~ProjectionRunner() { Stop(); }

void ProjectionRunner::PublishCheckpoint() {
  uint64_t low = UINT64_MAX;
  for (const Member& m : members_) low = std::min(low, m.folded);
  checkpoint_.store(members_.empty() ? 0 : low);
}

Status ProjectionRunner::Commit(Member* m, std::vector<StateOp> ops) {
  Status s = log_->CommitConsumer(m->name, m->folded, ops);
  if (s.ok()) m->committed = m->folded;
  return s;
}

Status ProjectionRunner::CatchUp(uint64_t until, const std::function<void(uint64_t)>& progress) {
  for (Member& m : members_) {
    uint64_t cp = 0;
    Status s = log_->ReadCheckpoint(m.name, &cp);
    if (!s.ok()) return s;
    m.folded = m.committed = cp;
  }
  PublishCheckpoint();
  return Run(until, /*lazy=*/false, progress);
}

Status ProjectionRunner::Run(uint64_t until, bool lazy,
                             const std::function<void(uint64_t)>& progress, bool rebuild) {
  if (members_.empty()) return Status::OK();
  if (until == 0) until = log_->LastSequence();
  if (lazy && std::chrono::steady_clock::now() - last_commit_ >= options_.checkpoint_interval) {
    // An idle log: move the checkpoints of what was folded without writes.
    for (Member& m : members_) {
      if (m.committed >= m.folded) continue;
      Status s = Commit(&m, {});
      if (!s.ok()) return s;
    }
    last_commit_ = std::chrono::steady_clock::now();
  }
  std::vector<ProjectionState> states;
  states.reserve(members_.size());
  // A rebuild starts from dropped state: nothing to read back until the
  // first spill commits some.
  std::vector<char> base_empty(members_.size(), rebuild ? 1 : 0);
  for (size_t i = 0; i < members_.size(); ++i) {
    const std::string* name = &members_[i].name;
    const char* empty = &base_empty[i];
    states.emplace_back([this, name, empty](std::string_view key, std::string* value) {
      if (*empty) return Status::NotFound("rebuilding");
      return log_->GetConsumerState(*name, key, value);
    });
  }
  while (checkpoint_.load() < until && !stop_.load()) {
    const uint64_t from = checkpoint_.load() + 1;
    uint64_t last = from - 1;
    size_t n = 0;
    Event e;
    Status s = log_->ScanRecords(from, [&](uint64_t seq, std::string_view record) {
      if (seq > until) return false;
      if (DecodeRecord(record, &e).ok()) {
        for (size_t i = 0; i < members_.size(); ++i)
          if (seq > members_[i].folded) members_[i].projection->Fold(e, &states[i]);
      }
      last = seq;
      return ++n < options_.batch;
    });
    if (!s.ok()) return s;
    for (const ProjectionState& st : states)
      if (!st.status().ok()) return st.status();
    if (last < from) break;  // nothing more to read
    auto now = std::chrono::steady_clock::now();
    bool due = !lazy || now - last_commit_ >= options_.checkpoint_interval;
    for (size_t i = 0; i < members_.size(); ++i) {
      Member& m = members_[i];
      if (m.folded >= last) continue;
      if (rebuild && last < until && states[i].size() < options_.rebuild_spill_keys) {
        m.folded = last;  // kept in memory: one write per key at the end
        continue;
      }
      base_empty[i] = 0;
      std::vector<StateOp> ops = states[i].TakeOps();
      m.folded = last;
      if (due || !ops.empty()) {
        s = Commit(&m, std::move(ops));
        if (!s.ok()) {
          m.folded = m.committed;  // its writes are lost with the batch
          return s;
        }
      }
    }
    if (due) last_commit_ = now;
    PublishCheckpoint();
    if (progress) progress(last);
  }
  if (rebuild && checkpoint_.load() < until)
    return Status::Unavailable("rebuild stopped at " + std::to_string(checkpoint_.load()) +
                               "; the committed state is consistent, catch up or rebuild again");
  return Status::OK();
}

Status ProjectionRunner::Rebuild(const std::function<void(uint64_t)>& progress) {
  for (Member& m : members_) {
    Status s = log_->DropConsumer(m.name);
    if (!s.ok()) return s;
    m.folded = m.committed = 0;
  }
  PublishCheckpoint();
  return Run(0, /*lazy=*/false, progress, /*rebuild=*/true);
}

void ProjectionRunner::Start() {
  stop_.store(false);
  for (Member& m : members_) {
    uint64_t cp = 0;
    if (log_->ReadCheckpoint(m.name, &cp).ok()) m.folded = m.committed = cp;
  }
  PublishCheckpoint();
  thread_ = std::thread([this] {
    auto last_read = std::chrono::steady_clock::time_point{};
    while (!stop_.load()) {
      auto wait = last_read + options_.min_read_interval - std::chrono::steady_clock::now();
      if (wait > wait.zero()) std::this_thread::sleep_for(wait);
      last_read = std::chrono::steady_clock::now();
      Status s = Run(0, /*lazy=*/true, {});
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
  if (thread_.joinable()) {
    thread_.join();
    // Folded with nothing left to write: the checkpoint may move there.
    for (Member& m : members_) {
      if (m.committed >= m.folded) continue;
      Status s = Commit(&m, {});
      if (!s.ok()) {
        std::lock_guard<std::mutex> lk(mu_);
        status_ = s;
      }
    }
  }
  stop_.store(false);  // CatchUp and Rebuild work again after Stop
}

Status ProjectionRunner::status() const {
  std::lock_guard<std::mutex> lk(mu_);
  return status_;
}

}  // namespace dfm
