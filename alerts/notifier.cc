#include "alerts/notifier.h"

#include <algorithm>
#include <cstdint>

namespace dfm {
namespace {

std::string Labels(const FiringAlert& a) {
  std::string s;
  for (const char* l : {"tenant", "system", "op"}) {
    auto it = a.labels.find(l);
    if (it != a.labels.end()) s += (s.empty() ? "" : ", ") + std::string(l) + " " + it->second;
  }
  return s.empty() ? "the service" : s;
}

}  // namespace

std::optional<AlertMail> AlertNotifier::Update(int64_t now_us, const std::vector<FiringAlert>& firing) {
  std::map<std::string, FiringAlert> now;
  for (const auto& a : firing) now[a.Key()] = a;
  for (const auto& [key, a] : now) {
    if (!firing_.count(key)) {
      news_[key] = {a, "firing", now_us};
    } else if (auto m = last_mailed_.find(key); m != last_mailed_.end() && now_us - m->second >= repeat_us_ &&
                                                !news_.count(key)) {
      news_[key] = {a, "still firing", now_us};
    }
  }
  for (const auto& [key, a] : firing_) {
    if (now.count(key)) continue;
    auto n = news_.find(key);
    if (n != news_.end() && n->second.what == "firing")
      n->second.what = "fired and resolved";
    else
      news_[key] = {a, "resolved", now_us};
    last_mailed_.erase(key);
  }
  firing_ = std::move(now);
  if (news_.empty() || in_flight_ || now_us < retry_at_us_) return std::nullopt;
  if (ever_sent_ && now_us - last_sent_us_ < min_interval_us_) return std::nullopt;

  std::vector<const News*> items;
  for (const auto& [key, n] : news_) items.push_back(&n);
  std::stable_sort(items.begin(), items.end(), [](const News* a, const News* b) {
    return (a->alert.category == "compliance") > (b->alert.category == "compliance");
  });
  bool compliance = false;
  int active = 0;
  for (const News* n : items) {
    compliance = compliance || (n->alert.category == "compliance" && n->what != "resolved");
    active += n->what == "firing" || n->what == "still firing";
  }
  AlertMail mail;
  mail.subject = "[dfm " + site_ + "] " + (compliance ? "Opt-out not delivered: " : "") +
                 (active ? std::to_string(active) + " alert" + (active == 1 ? "" : "s") + " firing"
                         : std::string("alerts resolved")) +
                 ": " + items.front()->alert.name + (items.size() > 1 ? " and more" : "");
  mail.body = "DF-Middleware at " + site_ + ":\n\n";
  for (const News* n : items) {
    mail.body += "- " + n->alert.name + " (" + n->alert.severity +
                 (n->alert.category.empty() ? "" : ", " + n->alert.category) + ") " + n->what + " for " +
                 Labels(n->alert) + ": " + n->alert.summary + "\n";
  }
  if (compliance)
    mail.body += "\nAn opt-out that does not reach a system lets texts go to a person who said STOP:\n"
                 "`dfm dead-letters`, fix the cause, then `dfm replay --execute`; `dfm audit violations`.\n";
  mail.body += "\nThe status page and GET /v1/health tell more. The same conditions are "
               "etc/prometheus/alerts.yml.\n";
  in_mail_ = std::move(news_);
  news_.clear();
  in_flight_ = true;
  return mail;
}

int64_t AlertNotifier::in_flight_news_since_us() const {
  int64_t since = INT64_MAX;
  for (const auto& [key, n] : in_mail_) since = std::min(since, n.since_us);
  return since == INT64_MAX ? 0 : since;
}

void AlertNotifier::Sent(int64_t now_us, bool ok) {
  if (!in_flight_) return;
  in_flight_ = false;
  if (ok) {
    ever_sent_ = true;
    last_sent_us_ = now_us;
    backoff_us_ = 0;
    for (const auto& [key, n] : in_mail_)
      if (n.what == "firing" || n.what == "still firing") last_mailed_[key] = now_us;
    in_mail_.clear();
    return;
  }
  // Not sent: its news waits again (newer news about the same alert wins).
  for (auto& [key, n] : in_mail_) news_.emplace(key, std::move(n));
  in_mail_.clear();
  constexpr int64_t k30s = 30LL * 1000000;
  backoff_us_ = backoff_us_ == 0 ? std::min(k30s, min_interval_us_)
                                 : std::min(backoff_us_ * 2, std::max(min_interval_us_, k30s));
  retry_at_us_ = now_us + backoff_us_;
}

}  // namespace dfm
