// Burst: callbacks one thread runs back to back, marked as one burst (the
// log's writer opens one around a group commit's answers). Code those
// callbacks call that hands work to another thread (http/answer_queue.h)
// can then hand the whole burst over once, at its end, instead of once
// per callback, where the other thread would wake for each.
//
// Contract: a flush given to Defer() runs on this thread when the
// outermost open Burst here is destroyed, after the flushes deferred
// before it; Defer() with no Burst open runs nothing and returns false
// (the caller then does the work at once). A flush must not throw: it runs
// in a destructor.
// Thread-safety: per thread; a Burst is opened and closed on one thread.
#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace dfm {

class Burst {
 public:
  Burst() { ++State().depth; }
  ~Burst() {
    ThreadState& s = State();
    if (--s.depth > 0) return;
    // Taken first: a flush that defers again opens a Burst of its own,
    // which runs that flush when it ends.
    std::vector<std::function<void()>> now;
    now.swap(s.flushes);
    for (auto& flush : now) flush();
  }
  Burst(const Burst&) = delete;
  Burst& operator=(const Burst&) = delete;

  static bool Defer(std::function<void()> flush) {
    ThreadState& s = State();
    if (s.depth == 0) return false;
    s.flushes.push_back(std::move(flush));
    return true;
  }

 private:
  struct ThreadState {
    int depth = 0;
    std::vector<std::function<void()>> flushes;
  };
  static ThreadState& State() {
    thread_local ThreadState s;
    return s;
  }
};

}  // namespace dfm
