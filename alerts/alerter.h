// Operator alerts by email, for sites without Prometheus (docs/alerts.md):
// a thread that every `tick_us` reads the service's own GET /metrics text,
// evaluates the rules of etc/prometheus/alerts.yml (AlertEvaluator), and
// mails what changed (AlertNotifier) over SMTP (SendMail). A mail that
// fails is tried again later; the service never waits for it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "alerts/notifier.h"
#include "alerts/rules.h"
#include "alerts/smtp.h"

namespace dfm {

struct AlertSettings {
  SmtpSettings smtp;
  std::string site;  // names the service in subjects ("dfm-1.example.com")
  int64_t tick_us = 15LL * 1000000;
  int64_t min_interval_us = 300LL * 1000000;
  int64_t repeat_us = 4LL * 3600 * 1000000;
  bool enabled() const { return !smtp.url.empty(); }
};

class Alerter {
 public:
  using Scrape = std::function<std::string()>;
  using Send = std::function<Status(const SmtpSettings&, const AlertMail&, int64_t now_us)>;
  Alerter(AlertSettings settings, Scrape scrape, std::function<int64_t()> now_us, Send send = SendMail);
  ~Alerter();  // stops the thread

  // Cluster mode (the scrape is GET /metrics?scope=cluster): every node
  // evaluates the cluster's metrics, and only the one `mails_here` answers
  // true on mails; the others count the mail as left to it and keep the
  // same account of what was mailed, so that the node that takes over
  // mails nothing twice. A partition's samples lose their `node` label
  // before they are evaluated: its alert keeps its identity when the
  // partition moves. While a tenant's partition (`partition_of`) has no
  // samples in the scrape (no node runs it yet), the tenant's alerts hold
  // as they were: a move is not an all-clear. Call before Start().
  void SetCluster(std::function<bool()> mails_here,
                  std::function<uint32_t(const std::string& tenant)> partition_of = nullptr) {
    mails_here_ = std::move(mails_here);
    partition_of_ = std::move(partition_of);
  }

  void Start();
  void Stop();
  // One evaluation now, on the caller's thread (tests; the thread calls it).
  void Tick();

  uint64_t mails_sent() const { return sent_.load(); }
  uint64_t mails_failed() const { return failed_.load(); }
  uint64_t mails_left_to_other_node() const { return elsewhere_.load(); }
  int firing() const { return firing_.load(); }

 private:
  AlertSettings settings_;
  Scrape scrape_;
  std::function<int64_t()> now_us_;
  Send send_;
  AlertEvaluator evaluator_;
  AlertNotifier notifier_;
  std::function<bool()> mails_here_;
  std::function<uint32_t(const std::string&)> partition_of_;
  std::atomic<uint64_t> sent_{0}, failed_{0}, elsewhere_{0};
  std::atomic<int> firing_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dfm
