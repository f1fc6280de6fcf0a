#include "projections/runner.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
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

// One read of the log: the events some projection uses, decoded.
struct ProjectionRunner::Batch {
  struct Item {
    Event event;
    DomainEvent domain;
    bool decoded = false;  // `domain` holds the payload
    uint64_t users = 0;    // bit i: members_[i] uses it (members 64 and up: ask)
  };
  std::vector<Item> items;  // reused from read to read; the first n are this read's
  size_t n = 0;
  uint64_t last = 0;  // the last sequence number read, used or not
  Status status;
};

void ProjectionRunner::ReadBatch(uint64_t from, uint64_t until, Batch* b, bool decode) const {
  b->n = 0;
  b->last = from - 1;
  size_t scanned = 0;
  std::string_view payload;
  b->status = log_->ScanRecords(from, [&](uint64_t seq, std::string_view record) {
    if (seq > until) return false;
    b->last = seq;
    if (b->items.size() <= b->n) b->items.emplace_back();
    Batch::Item& it = b->items[b->n];
    if (DecodeRecord(record, &it.event, &payload).ok()) {
      it.users = 0;
      bool used = false;
      for (size_t i = 0; i < members_.size(); ++i) {
        if (!members_[i].projection->Uses(it.event.type)) continue;
        used = true;
        if (i < 64) it.users |= uint64_t{1} << i;
      }
      if (used) {
        it.event.payload.assign(payload.data(), payload.size());
        it.decoded = decode && AsDomainEvent(it.event, &it.domain);
        b->n++;
      }
    }
    return ++scanned < options_.batch;
  });
}

void ProjectionRunner::DecodeBatch(Batch* b) {
  for (size_t k = 0; k < b->n; ++k) {
    Batch::Item& it = b->items[k];
    it.decoded = AsDomainEvent(it.event, &it.domain);
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
  uint64_t from = checkpoint_.load() + 1;
  if (from <= until) ReadBatch(from, until, cur);
  while (from <= until && !stop_.load()) {
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
        bool uses = i < 64 ? (it.users >> i) & 1 : members_[i].projection->Uses(it.event.type);
        if (uses && it.event.seq > members_[i].folded)
          members_[i].projection->FoldDecoded(it.event, it.decoded ? &it.domain : nullptr,
                                              &states[i]);
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

Status ProjectionRunner::Rebuild(const std::function<void(uint64_t)>& progress) {
  for (Member& m : members_) {
    Status s = log_->DropConsumer(m.name);
    if (!s.ok()) return s;
    m.folded = m.committed = 0;
  }
  PublishCheckpoint();
  const uint64_t until = log_->LastSequence();
  if (members_.empty() || until == 0) return Status::OK();

  // A pipeline over a ring of batches: one thread reads them, another
  // decodes their payloads, and each projection folds them on its own
  // thread, at its own pace (up to kRing batches apart), into state kept in
  // memory, committed in bulk at the end (or at a spill). (The read alone
  // and the decoding alone each take about as long as the busiest fold.)
  constexpr uint64_t kRing = 6;
  Batch ring[kRing];
  std::mutex mu;
  std::condition_variable cv;
  uint64_t scanned = 0;     // batches read
  bool scanned_all = false;  // no batch after `scanned`
  uint64_t published = 0;   // batches read and decoded
  bool read_all = false;    // no batch after `published`
  Status failed;            // the first error, which stops everyone (under mu)
  std::atomic<bool> any_failed{false};  // whether `failed` is set; read anywhere
  std::vector<uint64_t> done(members_.size(), 0);  // batches each has folded
  auto oldest_unfolded = [&] { return *std::min_element(done.begin(), done.end()); };
  auto stopping = [&] { return stop_.load() || any_failed.load(); };
  auto fail = [&](const Status& s) {
    std::lock_guard<std::mutex> lk(mu);
    if (failed.ok()) failed = s;
    any_failed.store(true);
    cv.notify_all();
  };

  std::thread reader([&] {
    uint64_t from = 1;
    for (uint64_t b = 0;; ++b) {
      {
        std::unique_lock<std::mutex> lk(mu);
        for (;;) {
          uint64_t oldest = oldest_unfolded();
          if (stopping() || oldest == UINT64_MAX || b < oldest + kRing) break;
          cv.wait_for(lk, std::chrono::milliseconds(100));
        }
        if (stopping()) break;
      }
      Batch& batch = ring[b % kRing];
      ReadBatch(from, until, &batch, /*decode=*/false);
      if (!batch.status.ok()) return fail(batch.status);
      std::lock_guard<std::mutex> lk(mu);
      if (batch.last >= from) scanned = b + 1;
      if (batch.last < from || batch.last >= until) scanned_all = true;
      cv.notify_all();
      if (scanned_all) break;
      from = batch.last + 1;
    }
    std::lock_guard<std::mutex> lk(mu);
    scanned_all = true;
    cv.notify_all();
  });

  std::thread decoder([&] {
    for (uint64_t b = 0;; ++b) {
      {
        std::unique_lock<std::mutex> lk(mu);
        while (!stopping() && b >= scanned && !scanned_all)
          cv.wait_for(lk, std::chrono::milliseconds(100));
        if (stopping() || b >= scanned) break;
      }
      DecodeBatch(&ring[b % kRing]);
      std::lock_guard<std::mutex> lk(mu);
      published = b + 1;
      cv.notify_all();
    }
    std::lock_guard<std::mutex> lk(mu);
    read_all = true;
    cv.notify_all();
  });

  std::vector<uint64_t> progress_seq(members_.size(), 0);  // under mu
  std::vector<std::thread> folders;
  for (size_t i = 0; i < members_.size(); ++i) {
    folders.emplace_back([&, i] {
      Member& m = members_[i];
      bool base_empty = true;  // nothing committed since the drop
      ProjectionState state([&](std::string_view key, std::string* value) {
        if (base_empty) return Status::NotFound("rebuilding");
        return log_->GetConsumerState(m.name, key, value);
      });
      auto commit = [&] {
        std::vector<StateEntryRef> entries = state.SortedEntries();
        if (base_empty) {  // an erase of what was never committed is no write
          entries.erase(std::remove_if(entries.begin(), entries.end(),
                                       [](const StateEntryRef& e) { return e.erase; }),
                        entries.end());
        }
        Status s = log_->BulkCommitConsumer(m.name, m.folded, entries);
        state.Clear();
        base_empty = false;
        if (s.ok()) m.committed = m.folded;
        return s;
      };
      auto fold_all = [&]() -> Status {
        for (uint64_t b = 0;; ++b) {
          {
            std::unique_lock<std::mutex> lk(mu);
            while (!stopping() && b >= published && !read_all)
              cv.wait_for(lk, std::chrono::milliseconds(100));
            if (stopping() || b >= published) break;
          }
          const Batch& batch = ring[b % kRing];
          for (size_t k = 0; k < batch.n; ++k) {
            const Batch::Item& it = batch.items[k];
            bool uses = i < 64 ? (it.users >> i) & 1 : m.projection->Uses(it.event.type);
            if (uses)
              m.projection->FoldDecoded(it.event, it.decoded ? &it.domain : nullptr, &state);
          }
          m.folded = batch.last;
          if (!state.status().ok()) return state.status();
          if (state.size() >= options_.rebuild_spill_keys && m.folded < until) {
            if (Status s = commit(); !s.ok()) return s;
          }
          std::lock_guard<std::mutex> lk(mu);
          done[i] = b + 1;
          progress_seq[i] = m.folded;
          cv.notify_all();
        }
        if (!stopping() && m.folded == until) return commit();
        return Status::OK();
      };
      Status s = fold_all();
      if (!s.ok()) fail(s);
      std::lock_guard<std::mutex> lk(mu);
      done[i] = UINT64_MAX;  // never holds the reader back again
      cv.notify_all();
    });
  }

  {
    std::unique_lock<std::mutex> lk(mu);
    while (oldest_unfolded() != UINT64_MAX) {
      cv.wait_for(lk, std::chrono::milliseconds(200));
      if (!progress) continue;
      uint64_t low = *std::min_element(progress_seq.begin(), progress_seq.end());
      lk.unlock();
      progress(low);
      lk.lock();
    }
  }
  reader.join();
  decoder.join();
  for (auto& t : folders) t.join();
  for (Member& m : members_) m.folded = m.committed;  // what the log holds
  PublishCheckpoint();
  if (!failed.ok()) return failed;
  if (checkpoint_.load() < until)
    return Status::Unavailable("rebuild stopped at " + std::to_string(checkpoint_.load()) +
                               "; the committed state is consistent, catch up or rebuild again");
  if (progress) progress(until);
  return Status::OK();
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
