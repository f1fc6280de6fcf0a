// systemd's notification protocol (sd_notify(3)) without libsystemd: a
// datagram to $NOTIFY_SOCKET. The unit (packaging/dfm.service) is
// Type=notify with WatchdogSec=: the service says READY=1 once its log is
// open and its listeners are bound, and WATCHDOG=1 while it is healthy.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace dfm {

// Sends `state` ("READY=1", "STATUS=...", ...). False when $NOTIFY_SOCKET
// is unset (not started by systemd) or the send failed.
bool SdNotify(std::string_view state);

// The watchdog interval systemd asks for ($WATCHDOG_USEC, for this
// process per $WATCHDOG_PID when set); zero when none.
std::chrono::microseconds SdWatchdogInterval();

// Tells systemd when the service is ready and feeds its watchdog.
// `ready` is polled until true (then READY=1 and a STATUS line); after
// that, every half watchdog interval, WATCHDOG=1 is sent while `healthy`
// says so: a wedged service stops feeding it and systemd restarts it.
// Without $NOTIFY_SOCKET it does nothing.
class SystemdNotifier {
 public:
  SystemdNotifier(std::function<bool()> ready, std::function<bool()> healthy, std::string status);
  ~SystemdNotifier();  // Stop()
  void Start();
  // Sends STOPPING=1 and ends the thread. Idempotent.
  void Stop();

 private:
  void Loop();
  std::function<bool()> ready_, healthy_;
  std::string status_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dfm
