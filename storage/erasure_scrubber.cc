#include "storage/erasure_scrubber.h"

#include <algorithm>
#include <string>
#include <vector>

namespace dfm {

ErasureScrubber::ErasureScrubber(RocksDbEventLog* log, Report report, std::chrono::milliseconds wait)
    : log_(log), report_(std::move(report)), wait_(wait), thread_([this] { Loop(); }) {}

ErasureScrubber::~ErasureScrubber() { Stop(); }

void ErasureScrubber::ScrubAfter(uint64_t seq) {
  std::lock_guard<std::mutex> lk(mu_);
  seq_ = std::max(seq_, seq);
  cv_.notify_all();
}

void ErasureScrubber::Stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ErasureScrubber::Loop() {
  const std::vector<std::string> except = {std::string(kReplicaCheckpoint)};
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || seq_ > 0; });
    if (stop_) return;
    const uint64_t seq = seq_;
    const auto until = std::chrono::steady_clock::now() + wait_;
    bool passed = log_->CheckpointsReach(seq, except);
    while (!stop_ && !passed && std::chrono::steady_clock::now() < until) {
      cv_.wait_for(lk, std::chrono::milliseconds(50));
      passed = log_->CheckpointsReach(seq, except);
    }
    if (stop_) return;
    if (seq_ == seq) seq_ = 0;  // a later erasure asks again
    lk.unlock();
    Status s = log_->CompactDerived();
    if (s.ok() && !passed)
      s = Status::Unavailable("compacted before every consumer had passed event " + std::to_string(seq));
    if (!s.ok() && report_) report_(seq, s);
    lk.lock();
  }
}

}  // namespace dfm
