// A real nats-server for the cluster tests (tests/cluster/): one server
// with JetStream on a loopback port, killed (-9) with the test.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "cluster/nats_client.h"
#include "util/status.h"

namespace dfm {
namespace testing {

// One nats-server with JetStream on a loopback port, its store in `dir`.
class NatsServer {
 public:
  NatsServer(const std::string& dir, int port) : dir_(dir), port_(port) { Start(); }
  ~NatsServer() { Kill(); }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  void Start() {
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test that crashes takes it along
      const std::string port = std::to_string(port_);
      execl("/usr/sbin/nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", port.c_str(),
            "-sd", dir_.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::string dir_;
  int port_;
  pid_t pid_ = -1;
};

// Tries `fn` until it is OK or 20 s pass (a server starting).
inline Status Eventually(const std::function<Status()>& fn) {
  Status s;
  for (int i = 0; i < 200; ++i) {
    s = fn();
    if (s.ok()) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return s;
}

// A client of `server` (no security), tried until it starts; null, with a
// test failure, when it never does.
inline std::unique_ptr<NatsClient> Connect(const NatsServer& server) {
  std::unique_ptr<NatsClient> nats;
  Status s = Eventually(
      [&] { return NatsClient::Connect({server.url()}, "test", NatsSecurity(), false, &nats); });
  if (!s.ok()) ADD_FAILURE() << "no NATS server at " << server.url() << ": " << s.ToString();
  return nats;
}

}  // namespace testing
}  // namespace dfm
