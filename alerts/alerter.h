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
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "alerts/exposition.h"
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
  // true on mails. Another node keeps each mail it would have sent as left
  // to the mailing node until the scrape shows that a node other than
  // itself (`node`, this node's label there) sent a mail since the mail's
  // news began, less one tick (kLastSentFamily; that node may have seen
  // the news a tick sooner). It then counts the mail as left to another
  // node and keeps the same account of what was mailed, so that the node
  // that takes over mails nothing twice. A mail still not seen sent when
  // this node becomes the mailing one (the mailing node died with it
  // unsent, or its mail server was down) is sent by this node a tick and
  // the scrapes' skew later, unless another node was seen to send
  // meanwhile (during a handover two nodes may both mail for a tick). A
  // partition's samples lose their `node` label before they are evaluated:
  // its alert keeps its identity when the partition moves. While a
  // tenant's partition (`partition_of`) has no samples in the scrape (no
  // node runs it yet), the tenant's alerts hold as they were: a move is
  // not an all-clear. Call before Start().
  void SetCluster(std::function<bool()> mails_here,
                  std::function<uint32_t(const std::string& tenant)> partition_of = nullptr,
                  std::string node = "") {
    mails_here_ = std::move(mails_here);
    partition_of_ = std::move(partition_of);
    node_ = std::move(node);
  }

  // The gauge every node exports: when it last sent an alert mail, in Unix
  // seconds (0: never).
  static constexpr const char* kLastSentFamily = "dfm_alert_mail_last_sent_timestamp_seconds";

  void Start();
  void Stop();
  // One evaluation now, on the caller's thread (tests; the thread calls it).
  void Tick();

  uint64_t mails_sent() const { return sent_.load(); }
  uint64_t mails_failed() const { return failed_.load(); }
  uint64_t mails_left_to_other_node() const { return elsewhere_.load(); }
  int firing() const { return firing_.load(); }
  int64_t last_mail_sent_us() const { return last_sent_us_.load(); }

 private:
  // The mail left to the mailing node: nullopt once seen sent (counted as
  // left to it) or while it may still be; the mail to send when this
  // node has mailed (`here`) for a tick and the scrapes' skew.
  std::optional<AlertMail> SettleLeft(const std::vector<MetricSample>& samples, int64_t now,
                                      bool here);
  // A mail this node does not send: counted as left to another node at
  // once if one was seen to send it, else kept in left_.
  void Leave(AlertMail mail, const std::vector<MetricSample>& samples, int64_t now);
  // Whether a node other than this one sent a mail since `since_us` less
  // one tick and the scrapes' skew, as `samples` (the cluster's) show.
  bool MailedElsewhere(const std::vector<MetricSample>& samples, int64_t since_us) const;
  // The mail out counts as sent by another node (left_to_other_node).
  void SentElsewhere(int64_t now);
  void Mail(const AlertMail& mail, int64_t now_us, size_t firing);

  AlertSettings settings_;
  Scrape scrape_;
  std::function<int64_t()> now_us_;
  Send send_;
  AlertEvaluator evaluator_;
  AlertNotifier notifier_;
  std::function<bool()> mails_here_;
  std::function<uint32_t(const std::string&)> partition_of_;
  std::string node_;
  // The mail left to the mailing node and not yet seen sent, and when its
  // oldest news began (Tick's thread only).
  std::optional<AlertMail> left_;
  int64_t left_since_us_ = 0;
  bool mailing_ = false;          // whether this node mailed at the last tick
  int64_t mailing_since_us_ = 0;  // since when, if it did
  // How far apart two nodes' views of the cluster's scrape may be.
  static constexpr int64_t kScrapeSkewUs = 2LL * 1000000;
  std::atomic<uint64_t> sent_{0}, failed_{0}, elsewhere_{0};
  std::atomic<int64_t> last_sent_us_{0};
  std::atomic<int> firing_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dfm
