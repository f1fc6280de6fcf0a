// A loopback TCP server that accepts every connection, writes `greeting`
// to it (an SMTP server's 220; empty: nothing) and then answers nothing
// until Close(): each client stays in the middle of its exchange. For
// tests of what a client has on the wire at once.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/ports.h"

namespace dfm::testing {

class HoldingServer {
 public:
  explicit HoldingServer(std::string greeting = "")
      : greeting_(std::move(greeting)), port_(FreePort()) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port_));
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(fd_, 64), 0);
    thread_ = std::thread([this] { Accept(); });
  }
  ~HoldingServer() { Close(); }
  HoldingServer(const HoldingServer&) = delete;
  HoldingServer& operator=(const HoldingServer&) = delete;

  int port() const { return port_; }
  // Connections accepted so far.
  int held() const { return held_.load(); }

  // Ends every connection (the clients see the server go) and the server.
  void Close() {
    if (stop_.exchange(true)) return;
    thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (int c : conns_) close(c);
    close(fd_);
  }

 private:
  void Accept() {
    while (!stop_.load()) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      if (!greeting_.empty()) (void)!write(c, greeting_.data(), greeting_.size());
      std::lock_guard<std::mutex> lock(mu_);
      conns_.push_back(c);
      held_++;
    }
  }

  const std::string greeting_;
  const int port_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> held_{0};
  std::mutex mu_;
  std::vector<int> conns_;
  std::thread thread_;
};

}  // namespace dfm::testing
