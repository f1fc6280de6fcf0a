#include "app/sync_runtime.h"

#include <caf/all.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>

#include "actors/campaign_actor.h"
#include "actors/engine.h"
#include "app/backfill_jobs.h"
#include "connectors/common/http_client.h"
#include "connectors/connector.h"
#include "projections/runner.h"
#include "projections/sync_projections.h"
#include "sync/contact_snapshot.h"
#include "sync/normalize.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/logging.h"

namespace dfm {

namespace {
// The log's consumer state the records connectors create are kept in, on
// a single node (connectors/common/vendor_records.h).
constexpr char kVendorRecordsConsumer[] = "vendor_records";

// A count from the settings (validated as a whole number by the config).
int Clamp(const std::string& v) {
  return static_cast<int>(std::min<long long>(std::stoll(v), 1 << 20));
}

// The connector actor's settings for (tenant, system), or nullopt when the
// system takes no pushes there.
std::optional<ConnectorSettings> MakeConnector(const std::string& tenant, const std::string& system,
                                               const SystemSettings& settings, HttpClient* http) {
  auto logger = Logger("sync");
  const Connector* f = FindConnector(system);
  if (!f || !f->client || !f->outbound_enabled(settings)) return std::nullopt;
  ConnectorSettings c;
  c.tenant = tenant;
  c.system = system;
  c.client = f->client(settings, http);
  c.credentials = f->credentials(settings);
  c.concurrency = std::max(1, Clamp(settings.at("concurrency")));
  c.rate_limit = std::max(1, Clamp(settings.at("rate_limit")));
  c.rate_window_us = std::stoll(settings.at("rate_window_ms")) * 1000;
  c.daily_limit = std::stoll(settings.at("daily_limit"));
  if (auto b = settings.find("daily_credit_budget"); b != settings.end() && !b->second.empty())
    c.daily_credit_budget = std::stoll(b->second);
  if (auto b = settings.find("pair_burst"); b != settings.end() && !b->second.empty())
    c.pair_burst = Clamp(b->second);
  if (auto i = settings.find("pair_interval_ms"); i != settings.end() && !i->second.empty())
    c.pair_interval_us = std::stoll(i->second) * 1000;
  c.backoff.base_us = std::stoll(settings.at("retry_base_ms")) * 1000;
  c.backoff.max_us = std::stoll(settings.at("retry_max_ms")) * 1000;
  c.backoff.max_attempts = std::max(1, Clamp(settings.at("max_attempts")));
  c.breaker_threshold = std::max(1, Clamp(settings.at("breaker_failures")));
  c.breaker_open_us = std::stoll(settings.at("breaker_open_ms")) * 1000;
  c.status = std::make_shared<ConnectorStatus>();
  c.status->tenant = tenant;
  c.status->system = system;
  // A role its settings keep it from (GoHighLevel records no texts or
  // calls without a conversation provider): nothing of it is asked.
  for (Role r : f->roles) {
    const std::string why = f->role_unavailable ? f->role_unavailable(r, settings) : "";
    if (!why.empty()) logger->warn("event={}_off tenant={} reason=\"{}\"", RoleName(r), tenant, why);
  }
  logger->info("event=connector tenant={} system={}", tenant, system);
  return c;
}
}  // namespace

struct SyncRuntime::Impl {
  SyncProjections all;
  std::unique_ptr<ProjectionRunner> projections;  // one reader for all of them
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<CurlHttpClient> http;
  std::unique_ptr<SnapshotStore> snapshots;  // contact actors' (sync/contact_snapshot.h)
  std::unique_ptr<caf::actor_system_config> caf_config;
  std::unique_ptr<caf::actor_system> system;
  std::unique_ptr<SyncEngine> engine;
  std::unique_ptr<BackfillJobs> backfills;
  std::shared_ptr<SyncStatusBoard> board = std::make_shared<SyncStatusBoard>();
  EventLog* log = nullptr;
  bool stopped = false;
  // The settings each connector actor runs with (a reload compares them).
  std::map<std::pair<std::string, std::string>, SystemSettings> in_use;
  std::shared_ptr<SyncEnv> env;
  std::shared_ptr<SyncControl> control;
  std::mutex reload_mu;
  std::function<bool(const std::string&)> runs;  // null: every tenant
  std::vector<std::string> Tenants(const Config& config) const {
    std::vector<std::string> out;
    for (const auto& t : config.tenants())
      if (!runs || runs(t)) out.push_back(t);
    return out;
  }
};

SyncRuntime::~SyncRuntime() { Stop(); }

namespace {

// Folds every tenant's (and "default"'s: every tenant's pauses) stream.
Status LoadSyncControl(const EventLog& log, std::vector<std::string> tenants, SyncControl* control) {
  if (std::find(tenants.begin(), tenants.end(), "default") == tenants.end()) tenants.push_back("default");
  std::vector<Event> events;
  for (const auto& t : tenants) {
    Status s = log.ScanStream(t, kSyncControlStream, [&events](const Event& e) {
      events.push_back(e);
      return true;
    });
    if (!s.ok()) return s;
  }
  control->Fold(std::move(events));
  return Status::OK();
}

// The rules [campaigns] sets, with the zones of libphonenumber's map
// (read once per process; without it phones say nothing and the contact's
// or the default zone is used).
std::shared_ptr<const CampaignRunSettings> CampaignRunSettingsFrom(const CampaignSettings& c,
                                                                  std::string public_base_url) {
  Status map;
  std::shared_ptr<const RecipientZones> zones = SystemRecipientZones(&map);
  if (!map.ok())
    Logger("campaigns")->warn("event=phone_zones_unavailable error=\"{}\"", map.ToString());
  auto r = std::make_shared<CampaignRunSettings>();
  (void)ParseQuietHours(c.quiet_hours, &r->hours);  // checked when read: else the default
  r->default_zone = c.default_zone;
  r->caps.per_day = static_cast<int>(c.per_day);
  r->caps.per_week = static_cast<int>(c.per_week);
  r->texts_per_second = static_cast<double>(c.texts_per_second);
  r->lease_us = c.lease_s * 1000000;
  r->zones = std::move(zones);
  while (!public_base_url.empty() && public_base_url.back() == '/') public_base_url.pop_back();
  r->public_base_url = std::move(public_base_url);
  return r;
}

}  // namespace

Status SyncRuntime::Start(const Config& config, EventLog* log, std::unique_ptr<SyncRuntime>* out,
                          std::function<bool(const std::string& tenant)> runs,
                          std::string subject_hash_key, std::shared_ptr<CasStore> vendor_records,
                          StateReplicator replicate_state, const std::vector<Event>& shared_control,
                          const std::atomic<bool>* cancel) {
  auto rt = std::unique_ptr<SyncRuntime>(new SyncRuntime());
  rt->impl_ = std::make_unique<Impl>();
  Impl& im = *rt->impl_;
  im.log = log;
  im.runs = std::move(runs);
  const std::vector<std::string> tenants = im.Tenants(config);
  auto logger = Logger("sync");
  ProjectionRunner::Options options;
  options.cancel = cancel;  // the catch-up below ends early once it is set
  im.projections = std::make_unique<ProjectionRunner>(log, im.all.All(), options);
  Status s = im.projections->CatchUp();
  if (!s.ok()) return Status::IOError("projections: " + s.ToString());
  // Ended short of the head: nothing may decide on projections behind the
  // log (a mapping not yet folded would make a second contact id).
  if (cancel && cancel->load()) return Status::Unavailable("the start was cancelled");
  logger->info("event=projections_ready checkpoint={}", im.projections->checkpoint());
  s = im.projections->Start();
  if (!s.ok()) return Status::IOError("projections: " + s.ToString());
  if (!config.sync().enabled) {
    *out = std::move(rt);
    return Status::OK();
  }

  const SyncSettings& ss = config.sync();
  im.board->sync_enabled = true;
  im.normalizer = std::make_unique<Normalizer>(ss.default_region);
  auto env = std::make_shared<SyncEnv>();
  env->log = log;
  env->board = im.board;
  // Each tenant decides with its own systems (a tenant whose GoHighLevel has
  // no conversation provider takes no texts there; others still do).
  for (const auto& tenant : tenants) env->contexts[tenant] = SyncContextFor(config, tenant);
  env->ctx = SyncContextFor(config, "");  // for a tenant not configured: never routed to
  env->mapper.normalizer = im.normalizer.get();
  for (const auto& tenant : tenants)
    for (const auto& [system, settings] : config.Systems(tenant))
      env->system_tables[{tenant, system}] = &settings;
  env->now_us = [] { return SystemClock::Instance()->NowMicros(); };
  env->campaigns = CampaignRunSettingsFrom(config.campaigns(), config.server().public_base_url);
  env->contact_idle_us = ss.contact_idle_s * 1000000;
  im.snapshots = std::make_unique<SnapshotStore>(log, std::string(kContactSnapshotConsumer));
  env->snapshots = im.snapshots.get();
  env->subject_hash_key = std::move(subject_hash_key);
  env->vendor_records = vendor_records ? std::move(vendor_records)
                                       : std::shared_ptr<CasStore>(NewLogCasStore(log, kVendorRecordsConsumer));
  env->replicate_state = std::move(replicate_state);
  env->gate = std::make_shared<SendGate>();
  env->erased_subjects = std::make_shared<ErasedSubjects>();
  env->control = std::make_shared<SyncControl>();
  s = LoadSyncControl(*log, tenants, env->control.get());  // a pause outlives a restart
  if (!s.ok()) return Status::IOError("sync control: " + s.ToString());
  for (const Event& e : shared_control) env->control->Apply(e);
  im.control = env->control;

  im.http = std::make_unique<CurlHttpClient>(kPushConnectionsPerHost);
  std::vector<ConnectorSettings> connectors;
  for (const auto& tenant : tenants) {
    for (const auto& [system, settings] : config.Systems(tenant)) {
      auto c = MakeConnector(tenant, system, settings, im.http.get());
      if (!c) continue;
      im.in_use[{tenant, system}] = settings;
      im.board->connectors.push_back(c->status);
      connectors.push_back(std::move(*c));
    }
  }
  im.env = env;

  im.caf_config = std::make_unique<caf::actor_system_config>();
  AddSyncMessageTypes(*im.caf_config);
  im.caf_config->set("scheduler.max-threads", 2);
  // An idle CAF worker polls its queue with 50 us sleeps for 500 rounds
  // before it waits on a condition variable (which an enqueue signals).
  // Those wake-ups cost the log writer and the HTTP thread CPU on a small
  // machine; after a short spin, wait on the condition variable instead.
  im.caf_config->set("work-stealing.moderate-poll-attempts", size_t{0});
  im.caf_config->set("logger.console", caf::atom("none"));
  im.system = std::make_unique<caf::actor_system>(*im.caf_config);
  im.engine = std::make_unique<SyncEngine>(*im.system, env, std::move(connectors));
  im.engine->Start();
  BackfillJobs::Env jobs;
  jobs.log = log;
  jobs.normalizer = im.normalizer.get();
  SyncEngine* engine = im.engine.get();
  jobs.send = [engine](const std::string& tenant, const std::string& system, BackfillRead read) {
    return engine->Read(tenant, system, std::move(read));
  };
  jobs.replicate_state = env->replicate_state;
  jobs.runs = im.runs;
  im.backfills = std::make_unique<BackfillJobs>(std::move(jobs));
  if (int resumed = im.backfills->ResumeStored(config); resumed > 0)
    logger->info("event=backfills_resumed count={}", resumed);
  *out = std::move(rt);
  return Status::OK();
}

void SyncRuntime::Reload(const Config& config) {
  Impl& im = *impl_;
  if (!im.engine) return;
  std::lock_guard<std::mutex> lock(im.reload_mu);
  const std::vector<std::string> tenants = im.Tenants(config);
  auto tables = std::make_shared<SyncEnv::Tables>();
  for (const auto& tenant : tenants) tables->contexts[tenant] = SyncContextFor(config, tenant);
  for (const auto& tenant : tenants)
    for (const auto& [system, settings] : config.Systems(tenant))
      tables->system_tables[{tenant, system}] = &settings;
  std::vector<ConnectorSettings> changed;
  for (const auto& tenant : tenants) {
    for (const auto& [system, settings] : config.Systems(tenant)) {
      auto old = im.in_use.find({tenant, system});
      if (old != im.in_use.end() && old->second == settings) continue;
      auto c = MakeConnector(tenant, system, settings, im.http.get());
      if (!c) continue;
      im.in_use[{tenant, system}] = settings;
      if (!im.engine->Has(tenant, system)) im.board->AddConnector(c->status);
      changed.push_back(std::move(*c));
    }
  }
  // A system a tenant no longer configures keeps its actor (pushes it
  // holds still go) but nothing new is asked of it: its context lists it
  // no more.
  im.engine->Reload(std::move(changed), std::move(tables));
}

std::shared_ptr<SyncControl> SyncRuntime::control() const { return impl_->control; }

BackfillJobs* SyncRuntime::backfills() const { return impl_->backfills.get(); }

void SyncRuntime::WakeConnectors() const {
  if (impl_->engine) impl_->engine->WakeConnectors();
}

void SyncRuntime::AddHealthParts(uint64_t last, JsonObject* parts) const {
  const Impl& im = *impl_;
  const uint64_t folded = im.projections ? im.projections->checkpoint() : 0;
  JsonObject p;
  Status s = im.projections ? im.projections->status() : Status::OK();
  p.Str("state", s.ok() ? "folding" : "failed")
      .UInt("folded_seq", folded)
      .UInt("behind", last > folded ? last - folded : 0);
  if (!s.ok()) p.Str("detail", s.ToString());
  parts->Raw("projections", p.Finish());
  parts->Raw("sync", SyncHealthJson(*im.board, last, SystemClock::Instance()->NowMicros()));
}

uint64_t SyncRuntime::Behind(uint64_t last) const {
  const Impl& im = *impl_;
  uint64_t done = im.projections ? im.projections->checkpoint() : 0;
  if (im.engine) done = std::min(done, im.board->router.decided.load());
  return last > done ? last - done : 0;
}

void SyncRuntime::AddServices(JsonObject* services) const {
  SyncServices(*impl_->board, SystemClock::Instance()->NowMicros(), services);
}

std::function<DecidedView()> SyncRuntime::DecidedSource() const {
  if (!impl_->engine) return nullptr;
  return [board = impl_->board] { return board->router.Decided(); };
}

void SyncRuntime::WriteMetrics(uint64_t last, MetricsText* out) const {
  const Impl& im = *impl_;
  const uint64_t folded = im.projections ? im.projections->checkpoint() : 0;
  const bool failed = im.projections && !im.projections->status().ok();
  out->Family("dfm_projections_lag_events", "gauge",
              "Events in the log after the lowest one every projection has folded.")
      .Sample({}, static_cast<double>(last > folded ? last - folded : 0));
  out->Family("dfm_projections_failed", "gauge", "1 while the last background fold failed.")
      .Sample({}, failed ? 1 : 0);
  SyncMetrics(*im.board, last, SystemClock::Instance()->NowMicros(), out);
}

void SyncRuntime::StatusSnapshot(uint64_t last, std::vector<ConnectorSnapshot>* connectors,
                                 EngineSnapshot* engine) const {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  const Impl& im = *impl_;
  const int64_t now = SystemClock::Instance()->NowMicros();
  const uint64_t folded = im.projections ? im.projections->checkpoint() : 0;
  engine->projections_behind = last > folded ? last - folded : 0;
  engine->projections_failed = im.projections && !im.projections->status().ok();
  engine->sync_enabled = im.board->sync_enabled;
  const uint64_t decided = im.board->router.decided.load(kRelaxed);
  engine->router_behind = im.board->sync_enabled && last > decided ? last - decided : 0;
  for (const auto& c : im.board->Connectors()) {
    ConnectorSnapshot s;
    s.tenant = c->tenant;
    s.system = c->system;
    const Connector* f = FindConnector(c->system);
    s.name = f ? f->name : c->system;
    s.breaker_open = c->breaker_open.load(kRelaxed);
    s.auth_failing = c->auth_failing.load(kRelaxed);
    s.down_since_us = c->down_since_us.load(kRelaxed);
    s.reopens_at_us = c->reopens_at_us.load(kRelaxed);
    s.last_success_us = c->last_success_us.load(kRelaxed);
    s.last_answer_us = c->last_answer_us.load(kRelaxed);
    s.last_failure_us = c->last_failure_us.load(kRelaxed);
    s.held = c->held.load(kRelaxed);
    const MinuteCounter::Sums hour = c->minutes.Last(now, 60), recent = c->minutes.Last(now, 5);
    s.ok_hour = hour.ok;
    s.failed_hour = hour.failed;
    s.failed_recent = recent.failed;
    s.oldest_opt_out_us = c->oldest_opt_out_us.load(kRelaxed);
    s.opt_outs_refused = c->opt_outs_refused.load(kRelaxed);
    s.opt_outs_refused_since_us = c->opt_outs_refused_since_us.load(kRelaxed);
    s.credits_today = c->credits_today.load(kRelaxed);
    s.credit_budget = c->credit_budget.load(kRelaxed);
    const RouterStatus::Inbound in = im.board->router.InboundOf(c->tenant, c->system);
    s.webhooks = in.webhooks;
    s.webhooks_batched = in.batched;
    s.webhook_facts = in.facts;
    s.notice = c->Notice();
    if (im.control) {
      if (auto p = im.control->PausedBy(c->tenant, c->system)) s.paused_since_us = p->since_us;
      s.concurrency_limit = im.control->Limit(c->tenant, c->system);
    }
    // Dead letters since the log began (the sync_status projection's count).
    std::string dead;
    if (im.log->GetConsumerState(SyncStatusProjection::kName,
                                 "n/" + c->tenant + "/" + c->system + "/dead", &dead)
            .ok())
      s.dead_letters = std::strtoull(dead.c_str(), nullptr, 10);
    connectors->push_back(std::move(s));
  }
}

void SyncRuntime::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  if (impl_->backfills) impl_->backfills->Stop();  // before the connectors they read through
  if (impl_->engine) impl_->engine->Stop();
  if (impl_->system) impl_->system->await_all_actors_done();
  // The HTTP client first: it answers what is in flight (those pushes stay
  // unsettled and are re-driven at the next start) while the vendor clients
  // its callbacks call into still exist.
  impl_->http.reset();
  impl_->engine.reset();
  impl_->system.reset();
  impl_->snapshots.reset();  // writes what the actors left, before the log closes
  if (impl_->projections) impl_->projections->Stop();
}

}  // namespace dfm
