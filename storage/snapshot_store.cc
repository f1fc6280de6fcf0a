#include "storage/snapshot_store.h"

#include <pthread.h>

#include <chrono>
#include <vector>

namespace dfm {

SnapshotStore::SnapshotStore(EventLog* log, std::string consumer)
    : log_(log), consumer_(std::move(consumer)), thread_([this] { Loop(); }) {}

SnapshotStore::~SnapshotStore() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void SnapshotStore::Put(std::string key, uint64_t seq, std::string value) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (erased_.count(key)) return;
    waiting_[std::move(key)] = std::move(value);
    if (seq > max_seq_) max_seq_ = seq;
    puts_++;
  }
  cv_.notify_all();
}

void SnapshotStore::Erase(std::string key) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    erased_.insert(key);
    waiting_[std::move(key)] = std::nullopt;
    puts_++;
  }
  cv_.notify_all();
}

Status SnapshotStore::Get(const std::string& key, std::string* value) const {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (erased_.count(key)) return Status::NotFound("erased");
    for (const auto* m : {&waiting_, &writing_}) {
      auto it = m->find(key);
      if (it != m->end()) {
        *value = *it->second;  // a deletion waits only for an erased key
        return Status::OK();
      }
    }
  }
  // Written, or never put: the log has the answer. A value the thread
  // finishes writing meanwhile is in the log before it leaves writing_.
  return log_->GetConsumerState(consumer_, key, value);
}

void SnapshotStore::Flush() {
  std::unique_lock<std::mutex> lk(mu_);
  const uint64_t target = puts_;
  cv_.notify_all();
  flushed_.wait(lk, [&] { return done_ >= target || (stop_ && waiting_.empty()); });
}

uint64_t SnapshotStore::written() const {
  std::lock_guard<std::mutex> lk(mu_);
  return written_;
}

uint64_t SnapshotStore::failed() const {
  std::lock_guard<std::mutex> lk(mu_);
  return failed_;
}

void SnapshotStore::Loop() {
  pthread_setname_np(pthread_self(), "dfm-snapshots");
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || !waiting_.empty(); });
    if (waiting_.empty()) return;  // stopping, nothing left
    writing_.swap(waiting_);
    const uint64_t seq = max_seq_, covered = puts_;
    lk.unlock();
    std::vector<StateOp> ops;
    ops.reserve(writing_.size());
    for (const auto& [k, v] : writing_) ops.push_back(StateOp{k, v.value_or(""), !v.has_value()});
    Status s = log_->CommitConsumer(consumer_, seq, ops);
    lk.lock();
    if (s.ok()) {
      written_ += writing_.size();
      writing_.clear();
    } else {
      // Kept for the next batch unless a newer value came meanwhile. A
      // store that is stopping drops them: a snapshot is only a cache.
      failed_ += writing_.size();
      for (auto& [k, v] : writing_) waiting_.emplace(k, std::move(v));
      writing_.clear();
      if (stop_) waiting_.clear();
      if (!waiting_.empty() && !stop_) {
        lk.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        lk.lock();
      }
    }
    done_ = covered;
    flushed_.notify_all();
  }
}

}  // namespace dfm
