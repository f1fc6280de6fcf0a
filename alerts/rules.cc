#include "alerts/rules.h"

#include <algorithm>
#include <iterator>

namespace dfm {
namespace {

constexpr int64_t kMinute = 60LL * 1000000;

std::string SeriesKey(const std::string& name, const std::map<std::string, std::string>& labels) {
  std::string k = name + "{";
  bool first = true;
  for (const auto& [l, v] : labels) {
    k += (first ? "" : ",") + l + "=" + v;
    first = false;
  }
  return k + "}";
}

bool Matches(const AlertRule& r, const std::map<std::string, std::string>& labels) {
  for (const auto& [label, allowed] : r.match) {
    auto it = labels.find(label);
    if (it == labels.end() || !allowed.count(it->second)) return false;
  }
  return true;
}

std::map<std::string, std::string> TenantSystem(const std::map<std::string, std::string>& labels) {
  std::map<std::string, std::string> out;
  for (const char* l : {"tenant", "system"})
    if (auto it = labels.find(l); it != labels.end()) out[l] = it->second;
  return out;
}

}  // namespace

const std::vector<AlertRule>& BuiltinAlertRules() {
  using K = AlertRule::Kind;
  // One rule to an entry, in the order of etc/prometheus/alerts.yml.
  // clang-format off
  static const std::vector<AlertRule> kRules = {
      {"DfmSyncErrorRateCritical", "critical", "", K::kErrorRatio, "dfm_push_attempts_total", "", {}, 0.05,
       5 * kMinute, 5 * kMinute, "more than 5% of requests to a system fail"},
      {"DfmSyncErrorRateWarning", "warning", "", K::kErrorRatio, "dfm_push_attempts_total", "", {}, 0.01,
       5 * kMinute, 5 * kMinute, "more than 1% of requests to a system fail"},
      {"DfmSyncBacklogCritical", "critical", "", K::kAbove, "dfm_connector_pushes_held", "", {}, 1000, 0,
       5 * kMinute, "more than 1,000 changes wait to reach a system"},
      {"DfmSyncBacklogWarning", "warning", "", K::kAbove, "dfm_connector_pushes_held", "", {}, 500, 0,
       5 * kMinute, "more than 500 changes wait to reach a system"},
      {"DfmRouterLagCritical", "critical", "", K::kAbove, "dfm_router_lag_events", "", {}, 1000, 0, 5 * kMinute,
       "the sync is more than 1,000 events behind the log"},
      {"DfmRouterLagWarning", "warning", "", K::kAbove, "dfm_router_lag_events", "", {}, 500, 0, 5 * kMinute,
       "the sync is more than 500 events behind the log"},
      {"DfmBreakerOpen", "critical", "", K::kEquals, "dfm_connector_breaker_open", "", {}, 1, 0, 5 * kMinute,
       "a system has failed so often that requests to it are paused"},
      {"DfmCredentialsRejected", "critical", "", K::kEquals, "dfm_connector_auth_failing", "", {}, 1, 0,
       5 * kMinute, "a system refuses the service's credentials"},
      {"DfmOptOutNotDelivered", "critical", "compliance", K::kAbove, "dfm_opt_out_oldest_undelivered_seconds",
       "", {}, 60, 0, 0, "an opt-out has not reached a system within a minute: texts may still go to a "
       "person who said STOP"},
      {"DfmOptOutDeadLettered", "critical", "compliance", K::kAbove, "dfm_opt_outs_refused", "", {}, 0, 0,
       0, "a system refused an opt-out: it is tried again, but that system may still text the person"},
      {"DfmDiskLow", "critical", "", K::kBelowMetric, "dfm_storage_free_bytes", "dfm_storage_min_free_bytes",
       {}, 0, 0, 0, "the data directory's disk is nearly full; the service stops taking webhooks"},
      {"DfmEventLogUnwritable", "critical", "", K::kEquals, "dfm_event_log_writable", "", {}, 0, 0,
       1 * kMinute, "the event log cannot be written: webhooks are refused"},
      {"DfmEventLogIndexUnreadable", "critical", "", K::kIncrease, "dfm_event_log_index_refused_total", "",
       {}, 0, 5 * kMinute, 0,
       "the event log's de-duplication index cannot be read: appends under those keys are refused "
       "(senders retry); its files are damaged: `dfm log verify`, then restore from a backup"},
      {"DfmApiKeysUnread", "warning", "", K::kAbove, "dfm_api_keys_unread_tenants", "", {}, 0, 0, 1 * kMinute,
       "the API keys of a tenant the last reload added could not be read: they are refused until a "
       "reload reads them (the log's api_keys_unread lines)"},
      {"DfmApiKeysStale", "warning", "", K::kAbove, "dfm_api_keys_stale", "", {}, 0, 0, 1 * kMinute,
       "a cluster node cannot read the keys the cluster shares: a key revoked on another node is still "
       "taken there (its log's shared_keys_unread lines)"},
      {"DfmApiKeysUnshared", "warning", "", K::kAbove, "dfm_api_keys_unshared", "", {}, 0, 0, 1 * kMinute,
       "key changes made on a cluster node have not reached the others: a key revoked there is still "
       "taken elsewhere (its log's shared_key_unwritten lines)"},
      {"DfmAccessLogUnwritten", "warning", "", K::kIncrease, "dfm_access_log_failures_total", "", {}, 0,
       15 * kMinute, 0, "access records (who read what) could not be written: a gap in that evidence"},
      {"DfmClusterPartitionRestarting", "critical", "", K::kIncrease, "dfm_cluster_partition_restarts_total",
       "", {}, 3, 5 * kMinute, 10 * kMinute,
       "a node has kept restarting its partitions for 10 minutes: their webhooks, acknowledged, wait to "
       "reach the partition's log; the node's log says why (its partition_ and ingest_ lines)"},
      {"DfmClusterWebhookLost", "critical", "", K::kIncrease, "dfm_cluster_ingest_lost_total", "", {}, 0,
       15 * kMinute, 0,
       "a webhook acknowledged to its sender could never be read by its partition and is lost; the "
       "node's log names it (ingest_webhook_lost)"},
  };
  // clang-format on
  return kRules;
}

std::string FiringAlert::Key() const { return SeriesKey(name, labels); }

AlertEvaluator::AlertEvaluator(std::vector<AlertRule> rules) : rules_(std::move(rules)) {
  for (const auto& r : rules_) {
    if (r.kind == AlertRule::Kind::kErrorRatio || r.kind == AlertRule::Kind::kIncrease) {
      counter_names_.insert(r.metric);
      longest_window_us_ = std::max(longest_window_us_, r.window_us);
    }
  }
}

std::map<std::map<std::string, std::string>, double> AlertEvaluator::Increase(const AlertRule& r,
                                                                               bool only_errors,
                                                                               int64_t now_us) const {
  std::map<std::map<std::string, std::string>, double> out;
  if (history_.empty()) return out;
  // The baseline: the oldest snapshot within the window.
  size_t base = 0;
  while (base < history_.size() && history_[base].at_us < now_us - r.window_us) ++base;
  if (base + 1 >= history_.size()) return out;
  // Every series seen, the last scrape's or not (a node slow to answer
  // this once is still counted).
  for (auto it = series_.lower_bound(r.metric + "{");
       it != series_.end() && it->first.compare(0, r.metric.size() + 1, r.metric + "{") == 0;
       ++it) {
    const std::string& key = it->first;
    const auto& labels = it->second.labels;
    if (!Matches(r, labels)) continue;
    if (only_errors) {
      auto o = labels.find("outcome");
      if (o == labels.end() || o->second == "ok") continue;
    }
    // Step by step, a counter that went down having started again (a
    // restart). Missing from the window's first scrapes: new (from 0) if
    // its source's samples were in the scrape before, else where first
    // seen (a node answering late has not increased by all it holds).
    bool seen = false;
    double before = 0, increase = 0;
    for (size_t i = base; i < history_.size(); ++i) {
      auto at = history_[i].counters.find(key);
      if (at == history_[i].counters.end()) continue;
      if (!seen && i > base && history_[i - 1].sources.count(it->second.source))
        seen = true;  // new
      if (seen) increase += at->second >= before ? at->second - before : at->second;
      seen = true;
      before = at->second;
    }
    out[TenantSystem(labels)] += increase;
  }
  return out;
}

std::vector<FiringAlert> AlertEvaluator::Evaluate(int64_t now_us,
                                                  const std::vector<MetricSample>& samples,
                                                  const Unseen& unseen) {
  Snapshot snap{now_us, {}, {}};
  for (const auto& s : samples) {
    snap.sources.insert(s.source);
    if (!counter_names_.count(s.name)) continue;
    // One series per source: nodes' counters of one partition are not
    // one counter.
    const std::string key = SeriesKey(s.name, s.labels) + (s.source.empty() ? "" : " @" + s.source);
    snap.counters[key] = s.value;
    Series& series = series_[key];
    series.labels = s.labels;
    series.source = s.source;
    series.last_seen_us = now_us;
  }
  history_.push_back(std::move(snap));
  while (history_.size() > 1 && history_[1].at_us <= now_us - longest_window_us_) history_.pop_front();
  for (auto it = series_.begin(); it != series_.end();)  // gone from every scrape kept
    it = it->second.last_seen_us < history_.front().at_us ? series_.erase(it) : std::next(it);

  std::map<std::string, FiringAlert> holding;  // key -> condition holds now
  auto hold = [&](const AlertRule& r, std::map<std::string, std::string> labels, double value) {
    FiringAlert a{r.name, r.severity, r.category, r.summary, std::move(labels), value, 0};
    holding[a.Key()] = std::move(a);
  };
  for (const auto& r : rules_) {
    switch (r.kind) {
      case AlertRule::Kind::kAbove:
      case AlertRule::Kind::kEquals:
        for (const auto& s : samples)
          if (s.name == r.metric && (r.kind == AlertRule::Kind::kAbove ? s.value > r.threshold
                                                                      : s.value == r.threshold))
            hold(r, s.labels, s.value);
        break;
      case AlertRule::Kind::kBelowMetric:
        for (const auto& s : samples) {
          if (s.name != r.metric) continue;
          for (const auto& o : samples)
            if (o.name == r.other_metric && o.labels == s.labels && s.value < o.value) hold(r, s.labels, s.value);
        }
        break;
      case AlertRule::Kind::kErrorRatio: {
        auto errors = Increase(r, true, now_us);
        for (const auto& [labels, total] : Increase(r, false, now_us)) {
          auto e = errors.find(labels);
          const double ratio = total > 0 && e != errors.end() ? e->second / total : 0;
          if (ratio > r.threshold) hold(r, labels, ratio);
        }
        break;
      }
      case AlertRule::Kind::kIncrease:
        for (const auto& [labels, inc] : Increase(r, false, now_us))
          if (inc > r.threshold) hold(r, labels, inc);
        break;
    }
  }
  if (unseen) {
    for (const auto& [key, a] : last_holding_)
      if (!holding.count(key) && unseen(a.labels)) holding.emplace(key, a);
  }
  last_holding_ = holding;
  std::vector<FiringAlert> firing;
  std::map<std::string, int64_t> still;
  for (auto& [key, a] : holding) {
    auto p = pending_since_.find(key);
    const int64_t since = p == pending_since_.end() ? now_us : p->second;
    still[key] = since;
    const AlertRule* rule = nullptr;
    for (const auto& r : rules_)
      if (r.name == a.name) rule = &r;
    if (now_us - since >= rule->for_us) {
      a.since_us = since;
      firing.push_back(std::move(a));
    }
  }
  pending_since_ = std::move(still);
  return firing;
}

}  // namespace dfm
