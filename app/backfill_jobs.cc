#include "app/backfill_jobs.h"

#include <unistd.h>

#include <chrono>
#include <future>

#include "connectors/connector.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/logging.h"

namespace dfm {

namespace {

int64_t Now() { return SystemClock::Instance()->NowMicros(); }

// "<tenant>/<system>" of a stored position (kBackfillConsumer); false for
// another key.
bool SplitPositionKey(std::string_view key, std::string* tenant, std::string* system) {
  const size_t slash = key.rfind('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == key.size()) return false;
  *tenant = std::string(key.substr(0, slash));
  *system = std::string(key.substr(slash + 1));
  return true;
}

}  // namespace

std::string BackfillJobJson(const BackfillJob& j) {
  const BackfillStats& s = j.stats;
  const double secs = std::max(
      1e-3, static_cast<double>((j.finished_us ? j.finished_us : Now()) - j.started_us) / 1e6);
  JsonObject o;
  o.Str("tenant", j.tenant)
      .Str("system", j.system)
      .Str("run_id", j.run_id)
      .Str("state", j.state)
      .Str("started_at", FormatIso8601Millis(j.started_us));
  if (j.finished_us) o.Str("finished_at", FormatIso8601Millis(j.finished_us));
  if (!j.error.empty()) o.Str("error", j.error);
  o.Bool("resumed", s.resumed)
      .Int("requests", s.requests)
      .Int("pages", s.pages)
      .Int("phones", s.phones)
      .Int("asked", s.asked)
      .Int("not_found", s.not_found)
      .Int("refused", s.refused)
      .Int("seen", s.seen)
      .Int("imported", s.imported)
      .Int("unchanged", s.unchanged)
      .Int("total", s.total)
      .Str("progress", FormatBackfillProgress(j.system, s, s.seen / secs));
  return o.Finish();
}

BackfillJobs::BackfillJobs(Env env) : env_(std::move(env)) {}

BackfillJobs::~BackfillJobs() { Stop(); }

Status BackfillJobs::Start(const Config& config, const std::string& tenant,
                           const std::string& system, int page_size, bool restart,
                           BackfillJob* job) {
  const Connector* f = FindConnector(system);
  if (f == nullptr || !f->client || f->backfill == Connector::Backfill::kNone)
    return Status::InvalidArgument("no backfill for '" + system + "'");
  const auto& systems = config.Systems(tenant);
  auto it = systems.find(system);
  if (it == systems.end() || !f->outbound_enabled(it->second))
    return Status::InvalidArgument(system + " takes no requests for tenant '" + tenant +
                                   "' (its api_base_url is not set)");
  if (page_size < 1 || page_size > 1000)
    return Status::InvalidArgument("page_size must be 1 to 1000");
  const SystemSettings& settings = it->second;
  BackfillOptions o;
  o.tenant = tenant;
  o.system = system;
  o.page_size = page_size;
  o.restart = restart;
  o.min_interval_us = 0;  // the connector actor paces the reads
  o.retry_base_us = std::stoll(settings.at("retry_base_ms")) * 1000;
  o.retry_max_us = std::stoll(settings.at("retry_max_ms")) * 1000;
  o.max_attempts = static_cast<int>(std::max<int64_t>(1, std::stoll(settings.at("max_attempts"))));
  const int64_t now = Now();
  o.run_id = "backfill-" + std::to_string(now / 1000000) + "-" + std::to_string(getpid());

  std::lock_guard<std::mutex> lk(mu_);
  if (stopped_) return Status::Unavailable("the service is stopping");
  auto& slot = runs_[{tenant, system}];
  if (slot && slot->job.state == "running") {
    *job = slot->job;
    return Status::AlreadyExists("a backfill of " + system + " runs for tenant '" + tenant + "'");
  }
  if (slot && slot->thread.joinable()) slot->thread.join();  // it ended: its thread is done
  slot = std::make_unique<Run>();
  slot->job.tenant = tenant;
  slot->job.system = system;
  slot->job.run_id = o.run_id;
  slot->job.state = "running";
  slot->job.started_us = now;
  *job = slot->job;
  Run* run = slot.get();
  const bool list = f->backfill == Connector::Backfill::kList;
  run->thread = std::thread([this, run, o, list] { Body(run, o, list); });
  Logger("sync")->info("event=backfill_started tenant={} system={} run_id={} restart={}", tenant,
                       system, o.run_id, restart);
  return Status::OK();
}

void BackfillJobs::Body(Run* run, BackfillOptions options, bool list) {
  BackfillDeps deps;
  deps.log = env_.log;
  deps.normalizer = env_.normalizer;
  deps.list = list;
  deps.read = [this, &options](const ReadAsk& ask) {
    return Read(options.tenant, options.system, ask);
  };
  deps.replicate_state = env_.replicate_state;
  deps.stopping = [this] {
    std::lock_guard<std::mutex> lk(mu_);
    return stopped_;
  };
  deps.now_us = Now;
  deps.sleep_us = [this](int64_t us) { Sleep(us); };
  deps.warn = [&options](const std::string& w) {
    Logger("sync")->warn("event=backfill_warning system={} warning=\"{}\"", options.system,
                         LogText(w));
  };
  BackfillStats stats;
  Status s = RunBackfill(
      options, deps,
      [this, run](const BackfillStats& st) {
        std::lock_guard<std::mutex> lk(mu_);
        run->job.stats = st;
      },
      &stats);
  std::lock_guard<std::mutex> lk(mu_);
  run->job.stats = stats;
  run->job.finished_us = Now();
  if (s.ok()) {
    run->job.state = "done";
  } else {
    run->job.state = stopped_ ? "stopped" : "failed";
    run->job.error =
        stopped_
            ? "the service stopped; the run continues from its position where the tenant runs next"
            : s.ToString();
  }
  Logger("sync")->info(
      "event=backfill_{} tenant={} system={} run_id={} seen={} imported={} error=\"{}\"",
      run->job.state, options.tenant, options.system, options.run_id, stats.seen, stats.imported,
      LogText(run->job.error));
}

ContactPage BackfillJobs::Read(const std::string& tenant, const std::string& system,
                               const ReadAsk& ask) {
  auto answer = std::make_shared<std::promise<ContactPage>>();
  auto got = answer->get_future();
  BackfillRead r;
  r.lookup = ask.lookup;
  r.cursor = ask.cursor;
  r.page_size = ask.page_size;
  r.phone = ask.phone;
  r.done =
      std::make_shared<ReadAnswer>([answer](ContactPage p) { answer->set_value(std::move(p)); });
  if (!env_.send(tenant, system, std::move(r))) {
    ContactPage p;
    p.detail = "no connector runs for " + system;
    return p;
  }
  // The connector answers every read (ReadAnswer); the wait also ends
  // when the service stops.
  while (got.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopped_) {
      ContactPage p;
      p.detail = "the service is stopping";
      return p;
    }
  }
  return got.get();
}

void BackfillJobs::Sleep(int64_t us) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, std::chrono::microseconds(us), [this] { return stopped_; });
}

std::vector<BackfillJob> BackfillJobs::List(const std::string& tenant) const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<BackfillJob> out;
  for (const auto& [key, run] : runs_)
    if (key.first == tenant && run) out.push_back(run->job);
  return out;
}

int BackfillJobs::ResumeStored(const Config& config) {
  std::vector<std::pair<std::string, std::string>> stored;
  Status s = env_.log->ScanConsumerState(
      kBackfillConsumer, "", [&](std::string_view key, std::string_view) {
        std::string tenant, system;
        if (SplitPositionKey(key, &tenant, &system) && (!env_.runs || env_.runs(tenant)))
          stored.emplace_back(tenant, system);
        return true;
      });
  if (!s.ok()) {
    Logger("sync")->warn("event=backfill_positions_unread error=\"{}\"", s.ToString());
    return 0;
  }
  int started = 0;
  for (const auto& [tenant, system] : stored) {
    BackfillJob job;
    Status st = Start(config, tenant, system, 100, /*restart=*/false, &job);
    if (st.ok()) {
      started++;
    } else {
      Logger("sync")->warn("event=backfill_not_resumed tenant={} system={} error=\"{}\"", tenant,
                           system, st.ToString());
    }
  }
  return started;
}

void BackfillJobs::Stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
  // Joined outside the lock: the runs take it to report.
  std::vector<std::thread*> threads;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [key, run] : runs_)
      if (run && run->thread.joinable()) threads.push_back(&run->thread);
  }
  for (std::thread* t : threads) t->join();
}

Status AnswerBackfill(BackfillJobs* jobs, const Config& config, const std::string& tenant,
                      const BackfillAsk& ask, std::string* json) {
  if (jobs == nullptr) return Status::Unavailable("the sync is off ([sync] enabled = false)");
  if (ask.start) {
    BackfillJob job;
    Status s = jobs->Start(config, tenant, ask.system, ask.page_size, ask.restart, &job);
    if (s.ok() || s.code() == Status::Code::kAlreadyExists) *json = BackfillJobJson(job);
    return s;
  }
  JsonArray runs;
  for (const auto& job : jobs->List(tenant)) runs.Raw(BackfillJobJson(job));
  *json = runs.Finish();
  return Status::OK();
}

}  // namespace dfm
