// AnswerQueue: answers finished on another thread (the log's writer, at a
// group commit) run on the HTTP front's I/O thread, a burst at a time.
//
// Posting each answer to the io_context on its own costs, per answer, an
// operation allocated and the io_context's lock, which its I/O thread also
// takes to run them: the two threads meet on it and put each other to
// sleep. A group commit ends ~50 webhooks at once (bench/README.md (b)).
// Here an answer joins a list under a lock of its own, and the list is
// posted only when it was empty, at the end of the poster's Burst
// (util/burst.h) when one is open: one post, and one wake-up of the I/O
// thread, per group commit (bench/stage_bench.cc, "answers").
//
// Contract: answers run in the order posted, each once, one at a time, on
// a thread running `io` (the lists go through a strand, so with several
// I/O threads too), unless Close() came first: Close() destroys the
// waiting ones and every later one at once, unrun. An answer must not
// throw; one that does is skipped and the others still run.
// Thread-safety: Post() and Close() from any thread. `io` and the queue
// outlive every Post (the front's log callbacks).
#pragma once

#include <functional>
#include <mutex>
#include <restinio/asio_include.hpp>
#include <utility>
#include <vector>

#include "util/burst.h"

namespace dfm {

class AnswerQueue {
 public:
  using Answer = std::function<void()>;

  explicit AnswerQueue(asio::io_context& io) : strand_(asio::make_strand(io)) {}
  AnswerQueue(const AnswerQueue&) = delete;
  AnswerQueue& operator=(const AnswerQueue&) = delete;

  void Post(Answer answer) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (closed_) return;  // `answer` is destroyed on return, outside the lock
      pending_.push_back(std::move(answer));
      if (scheduled_) return;
      scheduled_ = true;
    }
    if (!Burst::Defer([this] { Schedule(); })) Schedule();
  }

  // For the front's shutdown, once `io` runs no more: the waiting answers
  // are dropped (they hold tickets, not requests: http/server.cc), and so
  // is any posted after.
  void Close() {
    std::vector<Answer> dropped;
    std::lock_guard<std::mutex> lk(mu_);
    closed_ = true;
    dropped.swap(pending_);
  }

 private:
  // Posts a Drain. Should that fail (no memory), the list is marked not
  // scheduled, so the next Post tries again, rather than left waiting.
  void Schedule() noexcept {
    try {
      asio::post(strand_, [this] { Drain(); });
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      scheduled_ = false;
    }
  }

  void Drain() {
    std::vector<Answer> now;
    {
      std::lock_guard<std::mutex> lk(mu_);
      now.swap(pending_);
      scheduled_ = false;
    }
    for (auto& answer : now) {
      try {
        answer();
      } catch (...) {  // against the contract; the rest of the list still runs
      }
    }
  }

  asio::strand<asio::io_context::executor_type> strand_;
  std::mutex mu_;
  std::vector<Answer> pending_;  // guarded by mu_
  bool scheduled_ = false;       // a Drain is due (or posted) and has not taken the list yet
  bool closed_ = false;
};

}  // namespace dfm
