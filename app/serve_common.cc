#include "app/serve_common.h"

#include <unistd.h>

#include <algorithm>

#include "app/erase.h"
#include "config/schema.h"
#include "sync/contact_model.h"
#include "sync/normalize.h"
#include "util/clock.h"
#include "util/logging.h"
#include "util/sd_notify.h"

namespace dfm {

std::string DescribeChange(const Config& was, const Config& now) {
  std::string added, removed, changed;
  auto add = [](std::string* list, const std::string& item) {
    *list += (list->empty() ? "" : ", ") + item;
  };
  for (const auto& t : now.tenants()) {
    const auto& old_tenants = was.tenants();
    if (std::find(old_tenants.begin(), old_tenants.end(), t) == old_tenants.end()) {
      add(&added, t);
      continue;
    }
    for (const auto& [system, settings] : now.Systems(t)) {
      auto old = was.Systems(t).find(system);
      if (old == was.Systems(t).end() || old->second != settings) add(&changed, t + "/" + system);
    }
    for (const auto& [system, settings] : was.Systems(t))
      if (!now.Systems(t).count(system)) add(&changed, t + "/" + system + " (off)");
  }
  for (const auto& t : was.tenants()) {
    const auto& new_tenants = now.tenants();
    if (std::find(new_tenants.begin(), new_tenants.end(), t) == new_tenants.end()) add(&removed, t);
  }
  std::string out;
  if (!added.empty()) out += "tenants added: " + added;
  if (!removed.empty()) out += std::string(out.empty() ? "" : "; ") + "tenants removed: " + removed;
  if (!changed.empty()) out += std::string(out.empty() ? "" : "; ") + "systems changed: " + changed;
  return out;
}

Status Reloader::operator()(std::string* summary, const ReloadRecorder& record) {
  auto logger = Logger("main");
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ConfigProblem> found;
  auto next = std::make_unique<Config>(
      Config::Load(path_, Config::ProcessEnv(), &found));
  std::string why;
  int errors = 0;
  for (const auto& p : found) {
    if (!p.error) continue;
    if (errors++ == 0) why = p.key + ": " + p.message;
  }
  if (errors > 1) why += " (and " + std::to_string(errors - 1) + " more; see `dfm config check`)";
  if (why.empty()) {
    std::string key = RestartOnlyChange(*current_, *next);
    if (!key.empty()) why = key + " changes only with a restart";
  }
  if (!why.empty()) {
    logger->error("event=config_reload_refused reason=\"{}\"", LogText(why));
    return Status::InvalidArgument("configuration refused, the one in use stays: " + why);
  }
  *summary = DescribeChange(*current_, *next);
  if (summary->empty()) *summary = "nothing changed";
  if (record) {
    Status recorded = record(*summary);
    if (!recorded.ok()) {
      logger->error("event=config_reload_unrecorded error=\"{}\"", LogText(recorded.ToString()));
      return recorded;
    }
  }
  apply_(*next);
  current_ = next.get();
  kept_.push_back(std::move(next));
  logger->info("event=config_reloaded change=\"{}\"", LogText(*summary));
  return Status::OK();
}

std::unique_ptr<Alerter> StartAlerter(const Config& config, Alerter::Scrape scrape) {
  const AlertsSettings& a = config.alerts();
  if (a.smtp_url.empty()) return nullptr;
  AlertSettings as;
  as.smtp = {a.smtp_url, a.starttls, a.username, a.password, a.from, a.to, a.ca_file};
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  as.site = a.site.empty() ? std::string(host) : a.site;
  as.tick_us = a.tick_s * 1000000;
  as.min_interval_us = a.min_interval_s * 1000000;
  as.repeat_us = a.repeat_h * 3600 * 1000000;
  Logger("main")->info("event=alerts_on recipients={} every_s={}", a.to.size(), a.tick_s);
  return std::make_unique<Alerter>(as, std::move(scrape), [] { return SystemClock::Instance()->NowMicros(); });
}

void WriteAlerterMetrics(const Alerter* alerter, MetricsText* out) {
  if (!alerter) return;
  out->Family("dfm_alert_mails_total", "counter", "Alert mails sent, tries that failed, and (cluster mode) mails the mailing node was seen to send instead.")
      .Sample({{"outcome", "sent"}}, static_cast<double>(alerter->mails_sent()))
      .Sample({{"outcome", "failed"}}, static_cast<double>(alerter->mails_failed()))
      .Sample({{"outcome", "left_to_other_node"}}, static_cast<double>(alerter->mails_left_to_other_node()));
  out->Family(Alerter::kLastSentFamily, "gauge", "When this node last sent an alert mail, in Unix seconds (0: never).")
      // Whole seconds, printed exactly (a fraction is printed to 9 digits: ±5 s).
      .Sample({}, static_cast<double>(alerter->last_mail_sent_us() / 1000000));
  out->Family("dfm_alerts_firing", "gauge", "Alerts the service's own rules find firing.").Sample({}, alerter->firing());
}

int RunFront(HttpFront* front, std::function<bool()> healthy, const std::string& status) {
  SystemdNotifier notifier([front] { return front->listening(); }, std::move(healthy), status);
  notifier.Start();
  Status s = front->Run(/*handle_signals=*/true);
  notifier.Stop();
  if (s.ok()) return 0;
  Logger("main")->critical("event=listen_failed error=\"{}\"", s.ToString());
  return 1;
}

Status EraseForApi(const Config& config, EventLog* log, KeyStore* keys,
                   const std::string& ledger_path, const std::string& tenant,
                   const std::string& contact, const std::string& reason, const std::string& by,
                   bool force, EraseAnswer* answer, std::function<DecidedView()> router) {
  auto normalizer = std::make_shared<Normalizer>(config.sync().default_region);
  EraseRequest req{tenant, contact, reason, by, {}};
  req.ledger_path = ledger_path;
  req.force = force;
  req.delivers = [targets = SyncContextFor(config, tenant).targets](const std::string& system) {
    return targets.count(system) > 0;
  };
  req.mapper = MapperSource([&config, normalizer](const std::string& t, const std::string& sys) {
    return MapperSettingsFor(config, normalizer.get(), t, sys);
  });
  // The sync decides what it has of the person first (a STOP received a
  // moment ago lands before its key is destroyed), within the CLI's wait.
  if (config.sync().enabled) {
    req.decided = [log, router = std::move(router)] {
      DecidedView v = router ? router() : DecidedView{};
      v.AddCheckpoint(CheckpointView(log).checkpoint);
      return v;
    };
    req.wait_decided = RouterWaiter(req.decided, std::chrono::seconds(20));
    req.consent_wait = std::chrono::seconds(10);
  }
  EraseOutcome out;
  Status s = EraseContact(log, keys, req, &out);
  if (!s.ok()) return s;
  answer->seq = out.seq;
  answer->already = out.already;
  answer->keys = out.erasure.keys.size();
  answer->events = out.erasure.events;
  answer->sources = out.erasure.sources;
  answer->subjects = out.erasure.subjects.size();
  return Status::OK();
}

}  // namespace dfm
