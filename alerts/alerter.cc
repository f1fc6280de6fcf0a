#include "alerts/alerter.h"

#include <chrono>
#include <set>

#include "util/logging.h"

namespace dfm {

Alerter::Alerter(AlertSettings settings, Scrape scrape, std::function<int64_t()> now_us, Send send)
    : settings_(std::move(settings)),
      scrape_(std::move(scrape)),
      now_us_(std::move(now_us)),
      send_(std::move(send)),
      notifier_(settings_.site, settings_.min_interval_us, settings_.repeat_us) {}

Alerter::~Alerter() { Stop(); }

void Alerter::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      lock.unlock();
      Tick();
      lock.lock();
      cv_.wait_for(lock, std::chrono::microseconds(settings_.tick_us), [this] { return stop_; });
    }
  });
}

void Alerter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Alerter::Tick() {
  const int64_t now = now_us_();
  std::vector<MetricSample> samples = ParseExposition(scrape_());
  std::set<std::string> running;  // the partitions the scrape has samples of
  if (mails_here_) {
    for (auto& m : samples) {
      auto p = m.labels.find("partition");
      if (p == m.labels.end()) continue;
      m.labels.erase("node");
      if (m.name.rfind("dfm_cluster_", 0) != 0) running.insert(p->second);  // a partition's own
    }
  }
  AlertEvaluator::Unseen unseen;
  if (partition_of_) {
    // A partition's own alert (its log, its router) by its label; a
    // tenant's by the tenant's partition.
    unseen = [this, &running](const std::map<std::string, std::string>& labels) {
      if (auto p = labels.find("partition"); p != labels.end()) return !running.count(p->second);
      auto tenant = labels.find("tenant");
      return tenant != labels.end() &&
             !running.count(std::to_string(partition_of_(tenant->second)));
    };
  }
  const std::vector<FiringAlert> firing = evaluator_.Evaluate(now, samples, unseen);
  firing_.store(static_cast<int>(firing.size()));
  auto mail = notifier_.Update(now, firing);
  if (!mail) return;
  if (mails_here_ && !mails_here_()) {
    notifier_.Sent(now, true);
    elsewhere_.fetch_add(1);
    return;
  }
  Status s = send_(settings_.smtp, *mail, now);
  notifier_.Sent(now_us_(), s.ok());
  auto log = Logger("alerts");
  if (s.ok()) {
    sent_.fetch_add(1);
    log->info("event=alert_mail_sent firing={} recipients={}", firing.size(), settings_.smtp.to.size());
  } else {
    failed_.fetch_add(1);
    log->warn("event=alert_mail_failed error=\"{}\" pending={} effect=\"tried again later\"", s.message(),
              notifier_.pending());
  }
}

}  // namespace dfm
