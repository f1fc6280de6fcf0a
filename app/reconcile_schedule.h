// The daily reconcile (`reconcile.daily_at`, UTC): a thread that at that
// minute runs app/reconcile.h over every tenant against the service's own
// log, logs what it found (counts only), and, with `reconcile.execute`,
// appends the re-applications as one replay.requested per tenant, which
// the router hands to the contacts' actors like `dfm reconcile --execute`.
// In cluster mode each partition's node runs one over the partition's log
// for its tenants.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "config/config.h"
#include "storage/event_log.h"

namespace dfm {

// The first time at or after `now_us` that is `minute` minutes past a UTC
// midnight, strictly after `last_run_us` (a run is never repeated within
// the minute it ran).
int64_t NextDailyRun(int64_t now_us, int minute, int64_t last_run_us);

class ReconcileSchedule {
 public:
  // REQUIRES: `config` and `log` outlive it. `runs` (null: every tenant)
  // picks the tenants of `log` (a cluster partition's).
  ReconcileSchedule(const Config& config, EventLog* log, std::function<int64_t()> now_us,
                    std::function<bool(const std::string& tenant)> runs = nullptr);
  // A reloaded configuration: the next run reads it (its time, its share,
  // each system's settings). REQUIRES: `config` outlives it. Any thread.
  void Reload(const Config& config);
  ~ReconcileSchedule();  // stops the thread

  void Start();
  void Stop();
  // One run over every tenant now, on the caller's thread.
  void RunOnce();

  uint64_t runs() const { return runs_.load(); }
  uint64_t last_drift() const { return last_drift_.load(); }

 private:
  const Config* config_;  // guarded by mu_
  EventLog* log_;
  std::function<int64_t()> now_us_;
  std::function<bool(const std::string&)> tenants_;  // null: every tenant
  std::atomic<uint64_t> runs_{0}, last_drift_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dfm
