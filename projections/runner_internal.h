// ProjectionRunner's parts shared by runner.cc and runner_rebuild.cc; not
// for other users.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "projections/runner.h"
#include "util/huge_pages.h"

namespace dfm {

// One read of the log: the events some projection uses, decoded.
struct ProjectionRunner::Batch {
  struct Item {
    Event event;
    DomainEvent domain;
    bool decoded = false;  // `domain` holds the payload
    uint64_t users = 0;    // bit i: members_[i] uses it (members 64 and up: ask)
  };
  // Reused from read to read; the first n are this read's. A rebuild's
  // hold tens of MiB: on huge pages.
  std::vector<Item, HugePageAllocator<Item>> items;
  size_t n = 0;
  uint64_t last = 0;  // the last sequence number read, used or not
  Status status;
  // Not OK: a payload's key could not be read now (Open); the batch is
  // not folded (its events would be taken as unreadable for good).
  Status opened;
};

// Rebuild's pipeline over a ring of batches: one thread reads them,
// another decodes their payloads, and each projection folds them on its
// own thread, at its own pace (up to kRing batches apart). Batch b is in
// ring[b % kRing]; the reader fills it once every member has folded batch
// b - kRing. Everything but `any_failed` and the batches is under `mu`;
// a batch belongs to one stage at a time, handed on under `mu`.
struct ProjectionRunner::Pipeline {
  static constexpr uint64_t kRing = 4;

  // `cancel` (may be null): a second flag that stops it, as `stop` does.
  Pipeline(size_t members, const std::atomic<bool>* stop, const std::atomic<bool>* cancel)
      : done(members, 0), progress_seq(members, 0), stop_(stop), cancel_(cancel) {}

  // The oldest batch some member has not folded (UINT64_MAX: none left
  // that would hold the reader back). REQUIRES: mu held.
  uint64_t OldestUnfolded() const { return *std::min_element(done.begin(), done.end()); }
  // Whether to end: Stop() or a failure anywhere. Any thread, any time.
  bool Stopping() const {
    return stop_->load() || (cancel_ && cancel_->load()) || any_failed.load();
  }
  // Records the first failure, which stops every stage.
  void Fail(const Status& s) {
    std::lock_guard<std::mutex> lk(mu);
    if (failed.ok()) failed = s;
    any_failed.store(true);
    cv.notify_all();
  }

  Batch ring[kRing];
  std::mutex mu;
  std::condition_variable cv;
  uint64_t scanned = 0;                 // batches read
  bool scanned_all = false;             // no batch after `scanned`
  uint64_t published = 0;               // batches read and decoded
  bool read_all = false;                // no batch after `published`
  Status failed;                        // the first error
  std::atomic<bool> any_failed{false};  // whether `failed` is set
  std::vector<uint64_t> done;           // batches each member has folded
  std::vector<uint64_t> progress_seq;   // the last sequence each member folded

 private:
  const std::atomic<bool>* stop_;
  const std::atomic<bool>* cancel_;
};

// The layout mark a projection's first commit carries: none for layout 1.
inline std::optional<std::string> LayoutMark(const Projection& p) {
  if (p.layout() == 1) return std::nullopt;
  return std::to_string(p.layout());
}

}  // namespace dfm
