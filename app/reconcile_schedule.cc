#include "app/reconcile_schedule.h"

#include <algorithm>
#include <chrono>
#include <future>

#include "app/reconcile.h"
#include "connectors/common/http_client.h"
#include "sync/redrive.h"
#include "util/logging.h"

namespace dfm {

namespace {
constexpr int64_t kDayUs = 86400LL * 1000000;
constexpr int64_t kMinuteUs = 60LL * 1000000;

// Appends `req` as the tenant's replay.requested; its sequence number, 0
// when it could not be appended.
uint64_t AppendReplay(EventLog* log, const std::string& tenant, const ReplayRequest& req) {
  std::promise<uint64_t> done;
  auto seq = done.get_future();
  std::vector<EventDraft> drafts;
  drafts.push_back(ReplayRequestDraft(tenant, req));
  log->AppendAsync(std::move(drafts), [&done](const Status& s, const std::vector<AppendOutcome>& o) {
    done.set_value(s.ok() && !o.empty() ? o[0].seq : 0);
  });
  return seq.get();
}
}  // namespace

int64_t NextDailyRun(int64_t now_us, int minute, int64_t last_run_us) {
  const int64_t at = now_us - now_us % kDayUs + minute * kMinuteUs;  // today's
  const bool ran_in_it = last_run_us >= at && last_run_us < at + kMinuteUs;
  if (now_us < at + kMinuteUs && !ran_in_it) return std::max(at, now_us);
  return at + kDayUs;
}

ReconcileSchedule::ReconcileSchedule(const Config& config, EventLog* log,
                                     std::function<int64_t()> now_us,
                                     std::function<bool(const std::string&)> runs)
    : config_(&config), log_(log), now_us_(std::move(now_us)), tenants_(std::move(runs)) {}

void ReconcileSchedule::Reload(const Config& config) {
  std::lock_guard<std::mutex> g(mu_);
  config_ = &config;
}

ReconcileSchedule::~ReconcileSchedule() { Stop(); }

void ReconcileSchedule::Start() {
  thread_ = std::thread([this] {
    int64_t last = 0;
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      const int minute = config_->reconcile().daily_at_minute();
      const int64_t wait = minute < 0 ? kMinuteUs : NextDailyRun(now_us_(), minute, last) - now_us_();
      if (wait > 0 || minute < 0) {
        cv_.wait_for(lock, std::chrono::microseconds(std::min<int64_t>(wait, kMinuteUs)));
        continue;  // woken, stopped, or a minute on: look again
      }
      last = now_us_();
      lock.unlock();
      RunOnce();
      lock.lock();
    }
  });
}

void ReconcileSchedule::Stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ReconcileSchedule::RunOnce() {
  auto logger = Logger("reconcile");
  const Config* config;
  {
    std::lock_guard<std::mutex> g(mu_);
    config = config_;
  }
  CurlHttpClient http(2);
  uint64_t drift = 0;
  const double share = static_cast<double>(config->reconcile().rate_percent) / 100;
  for (const auto& tenant : config->tenants()) {
    if (tenants_ && !tenants_(tenant)) continue;
    const auto systems = ReconcileSystems(*config, tenant);
    if (systems.empty()) continue;
    ReconcilePlan plan;
    Status s = PlanReconcile(*log_, tenant, 0, systems, &plan);
    if (!s.ok()) {
      logger->error("event=reconcile_failed tenant={} error=\"{}\"", tenant, s.ToString());
      continue;
    }
    ReconcileClients clients;
    MakeReconcileReaders(*config, tenant, *log_, &http, share, &clients);
    ReconcileDeps deps;
    deps.readers = clients.readers;
    deps.now_us = now_us_;
    deps.cancelled = [this] {
      std::lock_guard<std::mutex> g(mu_);
      return stop_;
    };
    deps.sleep_us = [this](int64_t us) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::microseconds(us), [this] { return stop_; });
    };
    ReconcileReport report;
    RunReconcile(plan, deps, &report);
    uint64_t seq = 0;
    if (config->reconcile().execute && !report.drift.empty())
      seq = AppendReplay(log_, tenant,
                         ReapplyRequest(report.drift, "daily reconcile", report.started_at_us));
    drift += report.drift.size();
    logger->info("event=reconcile_done tenant={} checks={} drift={} unread={} requests={} replay_seq={}",
                 tenant, report.progress.total, report.progress.drift, report.progress.failed,
                 report.progress.requests, seq);
  }
  last_drift_.store(drift);
  runs_.fetch_add(1);
}

}  // namespace dfm
