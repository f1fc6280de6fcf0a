// Backfills run by the service (POST /v1/admin/backfill; `dfm backfill`
// against a running node): each on a thread of its own, its reads carried
// out by the tenant's connector actor (BackfillRead, actors/messages.h:
// the actor's grant, refreshed by the actor alone, and its rate limit), its
// contacts appended to the service's log (app/backfill.h). In a cluster
// they run on the node of the tenant's partition, whose log that is.
//
// Contract:
// - At most one runs per (tenant, system); the last one's outcome is kept
//   for GET until another starts.
// - A run the service stopped (or whose partition moved), and one that
//   failed, leaves its position stored (replicated with the partition in
//   a cluster): the service that runs the tenant next starts it again
//   from there (ResumeStored), as does `dfm backfill` asked again.
// - Stop() stops every run between two reads; reads waiting in a stopped
//   connector are answered "the connector stopped" (ReadAnswer).
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actors/messages.h"
#include "app/backfill.h"
#include "config/config.h"
#include "console/console.h"
#include "storage/cas_store.h"
#include "storage/event_log.h"
#include "sync/normalize.h"
#include "util/status.h"

namespace dfm {

// What GET /v1/admin/backfill shows of a run (docs/http-api.md).
struct BackfillJob {
  std::string tenant, system, run_id;
  std::string state;  // "running", "done", "failed", "stopped"
  std::string error;  // failed or stopped: why
  BackfillStats stats;
  int64_t started_us = 0, finished_us = 0;
};
// One run as a JSON object (its counts, and `progress` in words).
std::string BackfillJobJson(const BackfillJob& job);

class BackfillJobs {
 public:
  struct Env {
    EventLog* log = nullptr;
    const Normalizer* normalizer = nullptr;
    // Hands `read` to (tenant, system)'s connector actor; false when none runs.
    std::function<bool(const std::string& tenant, const std::string& system, BackfillRead read)>
        send;
    StateReplicator replicate_state;                      // cluster mode; null on one node
    std::function<bool(const std::string& tenant)> runs;  // null: every tenant
  };
  explicit BackfillJobs(Env env);
  ~BackfillJobs();
  BackfillJobs(const BackfillJobs&) = delete;
  BackfillJobs& operator=(const BackfillJobs&) = delete;

  // Starts a run with `config`'s settings of (tenant, system). AlreadyExists
  // (with the running one in *job) when one runs; InvalidArgument when the
  // system cannot be backfilled or takes no requests for the tenant
  // (api_base_url unset); Unavailable once stopped.
  Status Start(const Config& config, const std::string& tenant, const std::string& system,
               int page_size, bool restart, BackfillJob* job);
  // The tenant's runs, by system.
  std::vector<BackfillJob> List(const std::string& tenant) const;
  // Starts again every run whose position is stored (of the tenants `runs`
  // accepts); returns how many.
  int ResumeStored(const Config& config);
  void Stop();

 private:
  struct Run {
    BackfillJob job;
    std::thread thread;
  };
  void Body(Run* run, BackfillOptions options, bool list);
  // Waits `us` or until stopped.
  void Sleep(int64_t us);
  ContactPage Read(const std::string& tenant, const std::string& system, const ReadAsk& ask);

  Env env_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Run>> runs_;
};

// /v1/admin/backfill over `jobs` (console/console.h's BackfillHandler);
// Unavailable when `jobs` is null (the sync is off).
Status AnswerBackfill(BackfillJobs* jobs, const Config& config, const std::string& tenant,
                      const BackfillAsk& ask, std::string* json);

}  // namespace dfm
