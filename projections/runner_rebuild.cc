// ProjectionRunner::Rebuild: every projection dropped and folded again
// from the whole log (projections/runner.h), as a pipeline of threads
// (Pipeline, runner_internal.h).
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include "projections/runner.h"
#include "projections/runner_internal.h"

namespace dfm {

Status ProjectionRunner::Rebuild(const std::function<void(uint64_t)>& progress) {
  for (Member& m : members_) {
    Status s = log_->DropConsumer(m.name);
    if (!s.ok()) return s;
    m.folded = m.committed = 0;
  }
  PublishCheckpoint();
  const uint64_t until = log_->LastSequence();
  if (members_.empty() || until == 0) return Status::OK();

  // Each projection folds into state kept in memory, committed in bulk at
  // the end (or at a spill). (The read alone and the decoding alone each
  // take about as long as the busiest fold. Big batches, options_.batch,
  // let each thread run longer between hand-offs, which keeps more of its
  // table in its core's caches.)
  Pipeline p(members_.size(), &stop_, options_.cancel);
  std::thread reader([&] { RebuildRead(&p, until); });
  std::thread decoder([&] { RebuildDecode(&p); });
  std::vector<std::thread> folders;
  for (size_t i = 0; i < members_.size(); ++i)
    folders.emplace_back([&, i] { RebuildFold(&p, i, until); });
  {
    std::unique_lock<std::mutex> lk(p.mu);
    while (p.OldestUnfolded() != UINT64_MAX) {
      p.cv.wait_for(lk, std::chrono::milliseconds(200));
      if (!progress) continue;
      uint64_t low = *std::min_element(p.progress_seq.begin(), p.progress_seq.end());
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
  if (!p.failed.ok()) return p.failed;
  if (checkpoint_.load() < until)
    return Status::Unavailable("rebuild stopped at " + std::to_string(checkpoint_.load()) +
                               "; the committed state is consistent, catch up or rebuild again");
  if (progress) progress(until);
  return Status::OK();
}

// One scan of the whole log (a scan reads ahead once it is long), cut
// into batches of options_.batch records.
void ProjectionRunner::RebuildRead(Pipeline* p, uint64_t until) const {
  pthread_setname_np(pthread_self(), "dfm-rebuild-rd");
  uint64_t b = 0;
  Batch* batch = nullptr;  // the one being filled
  size_t in_batch = 0;
  auto publish = [&] {
    std::lock_guard<std::mutex> lk(p->mu);
    p->scanned = ++b;
    p->cv.notify_all();
    batch = nullptr;
  };
  Status s = log_->ScanRecords(1, [&](uint64_t seq, std::string_view record) {
    if (seq > until) return false;
    if (!batch) {
      std::unique_lock<std::mutex> lk(p->mu);
      for (;;) {
        uint64_t oldest = p->OldestUnfolded();
        if (p->Stopping() || oldest == UINT64_MAX || b < oldest + Pipeline::kRing) break;
        p->cv.wait_for(lk, std::chrono::milliseconds(100));
      }
      if (p->Stopping()) return false;
      batch = &p->ring[b % Pipeline::kRing];
      // Grown at once: one allocation, no items moved as it fills.
      if (batch->items.capacity() < options_.batch)
        batch->items.reserve(std::min<uint64_t>(options_.batch, until - seq + 1));
      batch->n = 0;
      batch->last = seq - 1;
      in_batch = 0;
    }
    AddRecord(seq, record, batch, /*decode=*/false);
    if (++in_batch == options_.batch) publish();
    return seq < until;
  });
  if (!s.ok()) p->Fail(s);
  if (batch && !p->Stopping()) publish();
  std::lock_guard<std::mutex> lk(p->mu);
  p->scanned_all = true;
  p->cv.notify_all();
}

void ProjectionRunner::RebuildDecode(Pipeline* p) const {
  pthread_setname_np(pthread_self(), "dfm-rebuild-dec");
  for (uint64_t b = 0;; ++b) {
    {
      std::unique_lock<std::mutex> lk(p->mu);
      while (!p->Stopping() && b >= p->scanned && !p->scanned_all)
        p->cv.wait_for(lk, std::chrono::milliseconds(100));
      if (p->Stopping() || b >= p->scanned) break;
    }
    DecodeBatch(&p->ring[b % Pipeline::kRing]);
    std::lock_guard<std::mutex> lk(p->mu);
    p->published = b + 1;
    p->cv.notify_all();
  }
  std::lock_guard<std::mutex> lk(p->mu);
  p->read_all = true;
  p->cv.notify_all();
}

void ProjectionRunner::RebuildFold(Pipeline* p, size_t i, uint64_t until) {
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
  Status s = FoldRebuilt(p, i, until, &state, &base_empty);
  if (!s.ok()) p->Fail(s);
  std::lock_guard<std::mutex> lk(p->mu);
  p->done[i] = UINT64_MAX;  // never holds the reader back again
  p->cv.notify_all();
}

Status ProjectionRunner::FoldRebuilt(Pipeline* p, size_t i, uint64_t until, ProjectionState* state,
                                     bool* base_empty) {
  Member& m = members_[i];
  for (uint64_t b = 0;; ++b) {
    {
      std::unique_lock<std::mutex> lk(p->mu);
      while (!p->Stopping() && b >= p->published && !p->read_all)
        p->cv.wait_for(lk, std::chrono::milliseconds(100));
      if (p->Stopping() || b >= p->published) break;
    }
    const Batch& batch = p->ring[b % Pipeline::kRing];
    if (!batch.opened.ok()) return batch.opened;
    for (size_t k = 0; k < batch.n; ++k) {
      const Batch::Item& it = batch.items[k];
      bool uses = i < 64 ? (it.users >> i) & 1 : m.projection->Takes(it.event.type);
      if (uses) m.projection->Apply(it.event, it.decoded ? &it.domain : nullptr, state);
    }
    m.folded = batch.last;
    if (!state->status().ok()) return state->status();
    if (state->size() >= options_.rebuild_spill_keys && m.folded < until) {
      if (Status s = CommitRebuilt(&m, state, base_empty); !s.ok()) return s;
    }
    std::lock_guard<std::mutex> lk(p->mu);
    p->done[i] = b + 1;
    p->progress_seq[i] = m.folded;
    p->cv.notify_all();
  }
  if (!p->Stopping() && m.folded == until) return CommitRebuilt(&m, state, base_empty);
  return Status::OK();
}

Status ProjectionRunner::CommitRebuilt(Member* m, ProjectionState* state, bool* base_empty) {
  StateEntryRefs entries = state->SortedEntries();
  // `entries` may point into `mark` until the commit below.
  const std::optional<std::string> mark = LayoutMark(*m->projection);
  if (*base_empty) {  // an erase of what was never committed is no write
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
  Status s = log_->BulkCommitConsumer(m->name, m->folded, entries);
  state->Clear();
  *base_empty = false;
  if (s.ok()) m->committed = m->folded;
  return s;
}

}  // namespace dfm
