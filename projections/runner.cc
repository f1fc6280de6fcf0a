#include "projections/runner.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>

#include "events/codec.h"
#include "projections/runner_internal.h"
#include "util/logging.h"

namespace dfm {

namespace {

constexpr std::chrono::milliseconds kFirstFoldRetry{100}, kMaxFoldRetry{5000}, kRetryStep{50};

// The background fold's pause after each run: none after a fold that went
// through, else from kFirstFoldRetry doubling to kMaxFoldRetry. Logs the
// first failure, a change of error, and the recovery (not every retry).
class FoldRetry {
 public:
  std::chrono::milliseconds After(const Status& s, uint64_t checkpoint) {
    if (s.ok()) {
      if (failing_)
        Logger("projections")->info("event=projections_fold_resumed checkpoint={}", checkpoint);
      failing_ = false;
      pause_ = kFirstFoldRetry;
      return std::chrono::milliseconds(0);
    }
    if (!failing_ || s.ToString() != last_error_)
      Logger("projections")
          ->error(
              "event=projections_fold_failed checkpoint={} error=\"{}\" "
              "effect=\"tried again, every {} ms at most\"",
              checkpoint, s.ToString(), kMaxFoldRetry.count());
    failing_ = true;
    last_error_ = s.ToString();
    const std::chrono::milliseconds now = pause_;
    pause_ = std::min(pause_ * 2, kMaxFoldRetry);
    return now;
  }

 private:
  bool failing_ = false;
  std::string last_error_;
  std::chrono::milliseconds pause_ = kFirstFoldRetry;
};

}  // namespace

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
  if (m->committed == 0)
    if (std::optional<std::string> mark = LayoutMark(*m->projection))
      ops.push_back({kLayoutKey, *mark});
  Status s = log_->CommitConsumer(m->name, m->folded, ops);
  if (s.ok()) m->committed = m->folded;
  return s;
}

Status ProjectionRunner::LoadCheckpoint(Member* m, bool* stale) {
  if (stale) *stale = false;
  uint64_t cp = 0;
  Status s = log_->ReadCheckpoint(m->name, &cp);
  if (!s.ok()) return s;
  if (cp > 0) {
    std::string mark;
    s = log_->GetConsumerState(m->name, kLayoutKey, &mark);
    if (!s.ok() && !s.IsNotFound()) return s;
    const int stored = s.ok() ? std::atoi(mark.c_str()) : 1;
    if (stored != m->projection->layout()) {
      // Folded by a build with another key layout: fold it again.
      if (stale) {
        *stale = true;
      } else {
        s = log_->DropConsumer(m->name);
        if (!s.ok()) return s;
      }
      cp = 0;
    }
  }
  m->folded = m->committed = cp;
  return Status::OK();
}

Status ProjectionRunner::CatchUp(uint64_t until, const std::function<void(uint64_t)>& progress) {
  std::vector<Projection*> refold;
  for (Member& m : members_) {
    bool stale = false;
    Status s = LoadCheckpoint(&m, &stale);
    if (!s.ok()) return s;
    if (stale) refold.push_back(m.projection);
  }
  if (!refold.empty()) {
    // State of another layout (after an upgrade) is dropped and folded
    // again by the rebuild's pipeline, many times faster than one batch at
    // a time.
    Options o = options_;
    o.batch = kRebuildBatch;
    Status s = ProjectionRunner(log_, refold, o).Rebuild();
    if (!s.ok()) return s;
    for (Member& m : members_) {
      if (std::find(refold.begin(), refold.end(), m.projection) == refold.end()) continue;
      s = LoadCheckpoint(&m);
      if (!s.ok()) return s;
    }
  }
  PublishCheckpoint();
  return Run(until, /*lazy=*/false, progress);
}


void ProjectionRunner::AddRecord(uint64_t seq, std::string_view record, Batch* b,
                                 bool decode) const {
  b->last = seq;
  if (b->items.size() <= b->n) b->items.emplace_back();
  Batch::Item& it = b->items[b->n];
  std::string_view payload;
  if (!DecodeRecord(record, &it.event, &payload).ok()) return;
  it.users = 0;
  bool used = false;
  for (size_t i = 0; i < members_.size(); ++i) {
    if (!members_[i].projection->Takes(it.event.type)) continue;
    used = true;
    if (i < 64) it.users |= uint64_t{1} << i;
  }
  if (!used) return;
  it.event.payload.clear();
  it.event.payload.reserve(payload.size() + kDecodePadding);  // decoded in place
  it.event.payload.assign(payload.data(), payload.size());
  if (decode) Open(b, b->n);
  b->n++;
}

void ProjectionRunner::Open(Batch* b, size_t k) const {
  Batch::Item& it = b->items[k];
  if (it.event.sealing == Event::Sealing::kSealed) {
    if (Status s = log_->Unseal(&it.event); !s.ok() && b->opened.ok()) b->opened = s;
    it.event.payload.reserve(it.event.payload.size() + kDecodePadding);
  }
  it.decoded = AsDomainEvent(it.event, &it.domain);
}

void ProjectionRunner::ReadBatch(uint64_t from, uint64_t until, Batch* b) const {
  b->n = 0;
  b->last = from - 1;
  b->opened = Status::OK();
  size_t scanned = 0;
  b->status = log_->ScanRecords(from, [&](uint64_t seq, std::string_view record) {
    if (seq > until) return false;
    AddRecord(seq, record, b, /*decode=*/true);
    return b->opened.ok() && ++scanned < options_.batch;  // not folded: read no further
  });
  if (b->status.ok()) b->status = b->opened;
}

void ProjectionRunner::DecodeBatch(Batch* b) const {
  b->opened = Status::OK();
  // A rebuild's batch (kRebuildBatch items of ~1 KiB) is out of the caches
  // by the time this thread reads it: each payload is asked for kAhead
  // items before it is opened, and the item holding its pointer twice that
  // (bench/README.md (f): 1.05x sealed, 1.10x clear).
  constexpr size_t kAhead = 4;
  for (size_t k = 0; k < b->n && b->opened.ok(); ++k) {
    if (k + 2 * kAhead < b->n) __builtin_prefetch(&b->items[k + 2 * kAhead].event.payload);
    if (k + kAhead < b->n) __builtin_prefetch(b->items[k + kAhead].event.payload.data());
    Open(b, k);
  }
}

Status ProjectionRunner::Run(uint64_t until, bool lazy,
                             const std::function<void(uint64_t)>& progress) {
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
  for (size_t i = 0; i < members_.size(); ++i) {
    const std::string* name = &members_[i].name;
    states.emplace_back([this, name](std::string_view key, std::string* value) {
      return log_->GetConsumerState(*name, key, value);
    });
    states.back().SetBaseScanner(
        [this, name](std::string_view prefix,
                     const std::function<bool(std::string_view, std::string_view)>& fn) {
          return log_->ScanConsumerState(*name, prefix, fn);
        });
  }
  // CatchUp reads the next batch on a second thread while this one folds;
  // the background loop reads only what it folds.
  Batch batches[2];
  Batch* cur = &batches[0];
  Batch* next = &batches[1];
  std::future<void> ahead;
  struct Join {  // the read ahead writes into `batches`: never leave it running
    std::future<void>* f;
    ~Join() {
      if (f->valid()) f->wait();
    }
  } join{&ahead};
  // Options::cancel ends a catch-up (not lazy), never the background
  // loop, which Stop ends.
  auto cancelled = [this, lazy] { return !lazy && options_.cancel && options_.cancel->load(); };
  uint64_t from = checkpoint_.load() + 1;
  if (from <= until && !cancelled()) ReadBatch(from, until, cur);
  while (from <= until && !stop_.load() && !cancelled()) {
    if (!cur->status.ok()) return cur->status;
    const uint64_t last = cur->last;
    if (last < from) break;  // nothing more to read
    if (!lazy && last < until)
      ahead = std::async(std::launch::async, [this, last, until, next] {
        ReadBatch(last + 1, until, next);
      });
    for (size_t k = 0; k < cur->n; ++k) {
      const Batch::Item& it = cur->items[k];
      for (size_t i = 0; i < members_.size(); ++i) {
        bool uses = i < 64 ? (it.users >> i) & 1 : members_[i].projection->Takes(it.event.type);
        if (uses && it.event.seq > members_[i].folded)
          members_[i].projection->Apply(it.event, it.decoded ? &it.domain : nullptr, &states[i]);
      }
    }
    for (const ProjectionState& st : states)
      if (!st.status().ok()) return st.status();
    auto now = std::chrono::steady_clock::now();
    bool due = !lazy || now - last_commit_ >= options_.checkpoint_interval;
    for (size_t i = 0; i < members_.size(); ++i) {
      Member& m = members_[i];
      if (m.folded >= last) continue;
      m.folded = last;
      std::vector<StateOp> ops = states[i].TakeOps();
      if (due || !ops.empty()) {
        Status s = Commit(&m, std::move(ops));
        if (!s.ok()) {
          m.folded = m.committed;  // its writes are lost with the batch
          return s;
        }
      }
    }
    if (due) last_commit_ = now;
    PublishCheckpoint();
    if (progress) progress(last);
    from = last + 1;
    if (from > until) break;
    if (ahead.valid()) {
      ahead.get();
    } else {
      ReadBatch(from, until, next);
    }
    std::swap(cur, next);
  }
  return Status::OK();
}

Status ProjectionRunner::Start() {
  stop_.store(false);
  {
    std::lock_guard<std::mutex> lk(mu_);
    status_ = Status::OK();
  }
  for (Member& m : members_) {
    // Folding on without knowing where a projection stands would fold
    // events into its state twice: nothing runs.
    Status s = LoadCheckpoint(&m);
    if (!s.ok()) return s;
  }
  PublishCheckpoint();
  thread_ = std::thread([this] {
    auto last_read = std::chrono::steady_clock::time_point{};
    FoldRetry retry;
    while (!stop_.load()) {
      auto wait = last_read + options_.min_read_interval - std::chrono::steady_clock::now();
      if (wait > wait.zero()) std::this_thread::sleep_for(wait);
      last_read = std::chrono::steady_clock::now();
      Status s = Run(0, /*lazy=*/true, {});
      {
        std::lock_guard<std::mutex> lk(mu_);
        status_ = s;  // the last fold's outcome: a failure clears once one succeeds
      }
      // A fold that fails (the log, or a key, not read now) is tried again
      // after a pause that grows to kMaxFoldRetry, not at once: the event
      // it stopped at is there, so WaitForSequence would not wait.
      const std::chrono::milliseconds pause = retry.After(s, checkpoint_.load());
      for (auto slept = pause.zero(); slept < pause && !stop_.load(); slept += kRetryStep)
        std::this_thread::sleep_for(kRetryStep);
      if (s.ok()) log_->WaitForSequence(checkpoint_.load() + 1, std::chrono::milliseconds(100));
    }
  });
  return Status::OK();
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
