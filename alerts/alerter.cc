#include "alerts/alerter.h"

#include <chrono>

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
  if (mails_here_) {
    for (auto& m : samples)
      if (m.labels.count("partition")) m.labels.erase("node");
  }
  const std::vector<FiringAlert> firing = evaluator_.Evaluate(now, samples);
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
