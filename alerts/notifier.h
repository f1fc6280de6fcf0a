// What to mail about the alerts, and when (docs/alerts.md): one mail per
// change, never one per evaluation. Pure; no I/O, no clock.
//
// - An alert that starts firing, stops, or is still firing `repeat_us`
//   after it was last mailed is news. News waits until `min_interval_us`
//   has passed since the last mail sent, and all that waits goes in one
//   mail: an outage that fires ten alerts on forty systems is one mail.
// - A mail that could not be sent keeps its news, tried again after a
//   backoff (the lesser of 30 s and min_interval_us, doubling up to the
//   greater); nothing is dropped.
// - Compliance alerts (an opt-out not delivered or given up on) lead the
//   mail and its subject says "Opt-out not delivered".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "alerts/rules.h"

namespace dfm {

struct AlertMail {
  std::string subject;
  std::string body;  // plain text; no personal data (alerts carry tenant and system only)
  // For other mails sent the same way (connectors/smtp: a campaign's email):
  // more header lines, the Message-ID (without <>; empty: a random one),
  // and whether it is marked Auto-Submitted (RFC 3834).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string message_id;
  bool auto_submitted = true;
};

class AlertNotifier {
 public:
  AlertNotifier(std::string site, int64_t min_interval_us, int64_t repeat_us)
      : site_(std::move(site)), min_interval_us_(min_interval_us), repeat_us_(repeat_us) {}

  // The alerts firing at `now_us` (AlertEvaluator): the mail to send now, or
  // nullopt. After a mail, nothing more until Sent() says how it went.
  std::optional<AlertMail> Update(int64_t now_us, const std::vector<FiringAlert>& firing);
  void Sent(int64_t now_us, bool ok);

  size_t pending() const { return news_.size(); }
  // When the oldest news in the mail out now became news (0 while no mail
  // is out). Another node evaluating the same metrics has that news since
  // about then too (cluster mode, Alerter).
  int64_t in_flight_news_since_us() const;

 private:
  struct News {
    FiringAlert alert;
    std::string what;  // "firing", "still firing", "resolved", "fired and resolved"
    int64_t since_us = 0;  // when it became news
  };

  std::string site_;
  int64_t min_interval_us_, repeat_us_;
  std::map<std::string, FiringAlert> firing_;
  std::map<std::string, int64_t> last_mailed_;
  std::map<std::string, News> news_;
  std::map<std::string, News> in_mail_;  // the news in the mail out now
  bool in_flight_ = false;
  bool ever_sent_ = false;
  int64_t last_sent_us_ = 0;
  int64_t retry_at_us_ = 0;
  int64_t backoff_us_ = 0;
};

}  // namespace dfm
