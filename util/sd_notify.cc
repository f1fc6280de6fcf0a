#include "util/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace dfm {

bool SdNotify(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || (path[0] != '/' && path[0] != '@') || path[1] == '\0') return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t len = std::strlen(path);
  if (len >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // an abstract socket
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const socklen_t alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  const ssize_t n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&addr), alen);
  ::close(fd);
  return n == static_cast<ssize_t>(state.size());
}

std::chrono::microseconds SdWatchdogInterval() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  if (usec == nullptr) return std::chrono::microseconds(0);
  if (const char* pid = std::getenv("WATCHDOG_PID"); pid && std::atol(pid) != ::getpid())
    return std::chrono::microseconds(0);
  const long long n = std::atoll(usec);
  return std::chrono::microseconds(n > 0 ? n : 0);
}

SystemdNotifier::SystemdNotifier(std::function<bool()> ready, std::function<bool()> healthy,
                                 std::string status)
    : ready_(std::move(ready)), healthy_(std::move(healthy)), status_(std::move(status)) {}

SystemdNotifier::~SystemdNotifier() { Stop(); }

void SystemdNotifier::Start() {
  if (std::getenv("NOTIFY_SOCKET") == nullptr) return;
  thread_ = std::thread([this] { Loop(); });
}

void SystemdNotifier::Stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    SdNotify("STOPPING=1");
  }
}

void SystemdNotifier::Loop() {
  using namespace std::chrono;
  const microseconds watchdog = SdWatchdogInterval();
  bool ready = false;
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    if (!ready && ready_()) {
      ready = true;
      SdNotify("READY=1\nSTATUS=" + status_);
    }
    if (ready && watchdog.count() > 0 && healthy_()) SdNotify("WATCHDOG=1");
    const microseconds wait = !ready ? microseconds(20000)
                              : watchdog.count() > 0 ? watchdog / 2
                                                     : microseconds(1000000);
    cv_.wait_for(lk, wait, [this] { return stop_; });
  }
}

}  // namespace dfm
