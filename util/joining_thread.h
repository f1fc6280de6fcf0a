// JoiningThread: a std::thread joined when it goes out of scope (C++20's
// std::jthread without stop tokens), so that a thread working on its
// caller's locals is joined on every path out, an exception's too.
// Destroying a joinable std::thread terminates the process.
#pragma once

#include <thread>
#include <utility>

namespace dfm {

class JoiningThread {
 public:
  JoiningThread() = default;
  template <typename Fn>
  explicit JoiningThread(Fn&& fn) : t_(std::forward<Fn>(fn)) {}
  JoiningThread(JoiningThread&&) = default;
  // Joins the thread it held before taking `other`'s.
  JoiningThread& operator=(JoiningThread&& other) {
    Join();
    t_ = std::move(other.t_);
    return *this;
  }
  ~JoiningThread() { Join(); }

  // Waits for the thread, when there is one still running. Idempotent.
  void Join() {
    if (t_.joinable()) t_.join();
  }

 private:
  std::thread t_;
};

}  // namespace dfm
