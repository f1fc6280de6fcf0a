// The alerting rules of etc/prometheus/alerts.yml, evaluated in the
// service for sites without Prometheus (docs/alerts.md). Same names, same
// thresholds, same `for` durations, over the same metric families read
// back from GET /metrics. DfmDown is not here: a service cannot report
// itself down. Pure; no I/O, no clock (the caller gives the time).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "alerts/exposition.h"

namespace dfm {

struct AlertRule {
  enum class Kind {
    kAbove,         // metric > threshold (each series)
    kEquals,        // metric == threshold (each series)
    kBelowMetric,   // metric < other metric of the same labels
    kErrorRatio,    // sum by (tenant, system) of increase(metric{outcome!="ok"}) / of increase(metric)
                    // over `window_us` > threshold
    kIncrease,      // sum by (tenant, system) of increase(metric{filter}) over `window_us` > threshold
  };
  std::string name;      // "DfmOptOutNotDelivered"
  std::string severity;  // "critical", "warning"
  std::string category;  // "compliance" or ""
  Kind kind = Kind::kAbove;
  std::string metric;
  std::string other_metric;                            // kBelowMetric
  std::map<std::string, std::set<std::string>> match;  // label -> allowed values (kIncrease)
  double threshold = 0;
  int64_t window_us = 0;
  int64_t for_us = 0;
  std::string summary;  // what it means, for people
};

// The rules of etc/prometheus/alerts.yml but DfmDown (tests/unit/alerts_test.cc
// checks the two lists agree).
const std::vector<AlertRule>& BuiltinAlertRules();

// An alert that is firing: its rule, the labels of its series (tenant,
// system, ...), the value that fired it and since when it has held.
struct FiringAlert {
  std::string name, severity, category, summary;
  std::map<std::string, std::string> labels;
  double value = 0;
  int64_t since_us = 0;
  // "DfmBreakerOpen{system=ghl,tenant=default}": one alert's identity.
  std::string Key() const;
};

class AlertEvaluator {
 public:
  explicit AlertEvaluator(std::vector<AlertRule> rules = BuiltinAlertRules());

  // Whether the samples an alert of these labels is read from are missing
  // from this scrape for a reason that says nothing of the alert (in a
  // cluster: its tenant's partition is moving between nodes).
  using Unseen = std::function<bool(const std::map<std::string, std::string>& labels)>;

  // One evaluation at `now_us` over a scrape's samples: the alerts firing
  // (their conditions held for the rule's `for`). Counters are remembered
  // for the longest window, one series per sample source, and increase
  // step by step, a drop being a restart. A series first seen where its
  // source's samples were seen before is new and counts from 0; one whose
  // source is new in the scrape (a node answering late, or this one just
  // started) starts where it is first seen, as Prometheus's increase(). An alert whose condition
  // held at the last evaluation and whose labels are `unseen` now holds as it was (its value, its
  // `for` time going on): it neither resolves nor starts over.
  std::vector<FiringAlert> Evaluate(int64_t now_us, const std::vector<MetricSample>& samples,
                                    const Unseen& unseen = nullptr);

 private:
  struct Snapshot {
    int64_t at_us;
    std::map<std::string, double> counters;  // series key -> value
    std::set<std::string> sources;           // whose samples the scrape held
  };
  struct Series {
    std::map<std::string, std::string> labels;
    std::string source;
    int64_t last_seen_us = 0;
  };
  // Increase of each series of `metric` (filtered) over `window_us`, summed by tenant and system.
  std::map<std::map<std::string, std::string>, double> Increase(const AlertRule& r, bool only_errors,
                                                                int64_t now_us) const;

  std::vector<AlertRule> rules_;
  std::set<std::string> counter_names_;
  int64_t longest_window_us_ = 0;
  std::deque<Snapshot> history_;
  std::map<std::string, Series> series_;             // series key -> its labels; those in history_
  std::map<std::string, int64_t> pending_since_;     // alert key -> since
  std::map<std::string, FiringAlert> last_holding_;  // alert key -> as it last held
};

}  // namespace dfm
