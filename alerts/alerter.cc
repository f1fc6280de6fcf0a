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
      auto n = m.labels.find("node");
      if (n != m.labels.end()) m.source = n->second;  // each node's own counter
      auto p = m.labels.find("partition");
      if (p == m.labels.end()) continue;
      if (n != m.labels.end()) m.labels.erase(n);  // one alert, whichever node runs it
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
  const bool here = !mails_here_ || mails_here_();
  if (here && !mailing_) mailing_since_us_ = now;
  mailing_ = here;
  std::optional<AlertMail> mail = SettleLeft(samples, now, here);
  // Update follows what fires even with a mail out (then it answers none).
  std::optional<AlertMail> news = notifier_.Update(now, firing);
  if (!mail) mail = std::move(news);
  if (!mail) return;
  if (!here) {
    Leave(std::move(*mail), samples, now);
    return;
  }
  Mail(*mail, now, firing.size());
}

std::optional<AlertMail> Alerter::SettleLeft(const std::vector<MetricSample>& samples, int64_t now,
                                            bool here) {
  if (!left_) return std::nullopt;
  if (MailedElsewhere(samples, left_since_us_)) {
    SentElsewhere(now);
    left_.reset();
    return std::nullopt;
  }
  if (!here || now - mailing_since_us_ < settings_.tick_us + kScrapeSkewUs) return std::nullopt;
  // The mailing node's part came here with this mail unsent, and no node
  // that thought itself the mailing one meanwhile was seen to send.
  std::optional<AlertMail> mail = std::move(left_);
  left_.reset();
  return mail;
}

void Alerter::Leave(AlertMail mail, const std::vector<MetricSample>& samples, int64_t now) {
  left_since_us_ = notifier_.in_flight_news_since_us();
  if (MailedElsewhere(samples, left_since_us_)) {
    SentElsewhere(now);
  } else {
    left_ = std::move(mail);
  }
}

void Alerter::SentElsewhere(int64_t now) {
  notifier_.Sent(now, true);
  elsewhere_.fetch_add(1);
}

bool Alerter::MailedElsewhere(const std::vector<MetricSample>& samples, int64_t since_us) const {
  for (const MetricSample& m : samples) {
    if (m.name != kLastSentFamily || m.value <= 0) continue;
    auto node = m.labels.find("node");
    if (node != m.labels.end() && node->second == node_) continue;
    // The other node may have seen the news up to a tick sooner, on a
    // scrape up to about a second older or newer than this node's.
    const int64_t from_us = since_us - settings_.tick_us - kScrapeSkewUs;
    if (m.value * 1e6 >= static_cast<double>(from_us)) return true;
  }
  return false;
}

void Alerter::Mail(const AlertMail& mail, int64_t now_us, size_t firing) {
  Status s = send_(settings_.smtp, mail, now_us);
  const int64_t after = now_us_();
  notifier_.Sent(after, s.ok());
  auto log = Logger("alerts");
  if (s.ok()) {
    sent_.fetch_add(1);
    last_sent_us_.store(after);
    log->info("event=alert_mail_sent firing={} recipients={}", firing, settings_.smtp.to.size());
  } else {
    failed_.fetch_add(1);
    log->warn("event=alert_mail_failed error=\"{}\" pending={} effect=\"tried again later\"", s.message(),
              notifier_.pending());
  }
}

}  // namespace dfm
