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

namespace {
// The layout mark a projection's first commit carries: none for layout 1.
std::optional<std::string> LayoutMark(const Projection& p) {
  if (p.layout() == 1) return std::nullopt;
  return std::to_string(p.layout());
}
}  // namespace

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
    log_->Unseal(&it.event);
    it.event.payload.reserve(it.event.payload.size() + kDecodePadding);
  }
  it.decoded = AsDomainEvent(it.event, &it.domain);
}

void ProjectionRunner::ReadBatch(uint64_t from, uint64_t until, Batch* b) const {
  b->n = 0;
  b->last = from - 1;
  size_t scanned = 0;
  b->status = log_->ScanRecords(from, [&](uint64_t seq, std::string_view record) {
    if (seq > until) return false;
    AddRecord(seq, record, b, /*decode=*/true);
    return ++scanned < options_.batch;
  });
}

void ProjectionRunner::DecodeBatch(Batch* b) const {
  for (size_t k = 0; k < b->n; ++k) Open(b, k);
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
  // and the decoding alone each take about as long as the busiest fold.
  // Big batches, options_.batch, let each thread run longer between
  // hand-offs, which keeps more of its table in its core's caches.)
  constexpr uint64_t kRing = 4;
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

  // One scan of the whole log (a scan reads ahead once it is long), cut
  // into batches of options_.batch records.
  std::thread reader([&] {
    pthread_setname_np(pthread_self(), "dfm-rebuild-rd");
    uint64_t b = 0;
    Batch* batch = nullptr;  // the one being filled
    size_t in_batch = 0;
    auto publish = [&] {
      std::lock_guard<std::mutex> lk(mu);
      scanned = ++b;
      cv.notify_all();
      batch = nullptr;
    };
    Status s = log_->ScanRecords(1, [&](uint64_t seq, std::string_view record) {
      if (seq > until) return false;
      if (!batch) {
        std::unique_lock<std::mutex> lk(mu);
        for (;;) {
          uint64_t oldest = oldest_unfolded();
          if (stopping() || oldest == UINT64_MAX || b < oldest + kRing) break;
          cv.wait_for(lk, std::chrono::milliseconds(100));
        }
        if (stopping()) return false;
        batch = &ring[b % kRing];
        batch->n = 0;
        batch->last = seq - 1;
        in_batch = 0;
      }
      AddRecord(seq, record, batch, /*decode=*/false);
      if (++in_batch == options_.batch) publish();
      return seq < until;
    });
    if (!s.ok()) fail(s);
    if (batch && !stopping()) publish();
    std::lock_guard<std::mutex> lk(mu);
    scanned_all = true;
    cv.notify_all();
  });

  std::thread decoder([&] {
    pthread_setname_np(pthread_self(), "dfm-rebuild-dec");
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
      pthread_setname_np(pthread_self(), ("dfm-fold-" + members_[i].name).substr(0, 15).c_str());
      Member& m = members_[i];
      bool base_empty = true;  // nothing committed since the drop
      ProjectionState state([&](std::string_view key, std::string* value) {
        if (base_empty) return Status::NotFound("rebuilding");
        return log_->GetConsumerState(m.name, key, value);
      });
      state.SetBaseScanner([&](std::string_view prefix,
                               const std::function<bool(std::string_view, std::string_view)>& fn) {
        return base_empty ? Status::OK() : log_->ScanConsumerState(m.name, prefix, fn);
      });
      const std::optional<std::string> mark = LayoutMark(*m.projection);
      auto commit = [&] {
        std::vector<StateEntryRef> entries = state.SortedEntries();
        if (base_empty) {  // an erase of what was never committed is no write
          entries.erase(std::remove_if(entries.begin(), entries.end(),
                                       [](const StateEntryRef& e) { return e.erase; }),
                        entries.end());
          if (mark) {
            StateEntryRef ref{kLayoutKey, *mark};
            entries.insert(std::lower_bound(entries.begin(), entries.end(), ref,
                                            [](const StateEntryRef& a, const StateEntryRef& b) {
                                              return a.key < b.key;
                                            }),
                           ref);
          }
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
            bool uses = i < 64 ? (it.users >> i) & 1 : m.projection->Takes(it.event.type);
            if (uses) m.projection->Apply(it.event, it.decoded ? &it.domain : nullptr, &state);
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
    while (!stop_.load()) {
      auto wait = last_read + options_.min_read_interval - std::chrono::steady_clock::now();
      if (wait > wait.zero()) std::this_thread::sleep_for(wait);
      last_read = std::chrono::steady_clock::now();
      Status s = Run(0, /*lazy=*/true, {});
      {
        std::lock_guard<std::mutex> lk(mu_);
        status_ = s;  // the last fold's outcome: a failure clears once one succeeds
      }
      log_->WaitForSequence(checkpoint_.load() + 1, std::chrono::milliseconds(100));
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
