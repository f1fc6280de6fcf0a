// Metrics for GET /metrics: lock-free instruments and the Prometheus text
// exposition format (version 0.0.4), docs/metrics.md.
//
// Contract:
// - Instruments are updated from any thread without locks (relaxed
//   atomics); a scrape reads each value on its own, so a histogram's count
//   and its buckets may be a few observations apart, never torn.
// - MetricsText is pure: it renders what it is given. It writes each
//   family's HELP and TYPE once, before its samples, and escapes label
//   values as the format requires (\\, \", \n). Callers keep label values
//   to bounded sets (configured tenants, registered systems, fixed
//   outcome names); nothing a request sends becomes a label value.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dfm {

// A histogram of durations (or counts) with fixed upper bounds. Bounds are
// in the unit observed (microseconds for durations); MetricsText scales
// them when it writes (seconds for durations).
class Histogram {
 public:
  // REQUIRES: `bounds` ascending and not empty.
  explicit Histogram(std::vector<int64_t> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(int64_t value);

  struct Snapshot {
    std::vector<int64_t> bounds;
    std::vector<uint64_t> cumulative;  // per bound: observations <= it
    uint64_t count = 0;                // all observations (the +Inf bucket)
    int64_t sum = 0;
  };
  Snapshot Read() const;

  // 1 ms .. 10 s, for durations in microseconds.
  static std::vector<int64_t> LatencyBoundsUs();
  // 1 s .. 1 h, for how long something took to reach every system.
  static std::vector<int64_t> PropagationBoundsUs();
  // 1 .. 4096, for sizes such as events per group commit.
  static std::vector<int64_t> CountBounds();

 private:
  const std::vector<int64_t> bounds_;
  std::vector<std::atomic<uint64_t>> buckets_;  // non-cumulative; the last is +Inf
  std::atomic<int64_t> sum_{0};
};

using MetricLabels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

class MetricsText {
 public:
  // Starts a family: `type` is "counter", "gauge" or "histogram". A
  // counter's name ends in _total.
  MetricsText& Family(std::string_view name, std::string_view type, std::string_view help);
  // A sample of the current family (counter or gauge).
  MetricsText& Sample(MetricLabels labels, double value);
  // The current (histogram) family's _bucket, _sum and _count samples.
  // `scale`: what an observed unit is worth in the family's unit (1e-6 for
  // microseconds written as seconds, 1 for counts).
  MetricsText& Histo(MetricLabels labels, const Histogram::Snapshot& h, double scale);

  // Text another MetricsText made (whole families), as it is.
  MetricsText& Append(std::string_view text) {
    out_.append(text);
    return *this;
  }

  const std::string& text() const { return out_; }
  std::string Finish() { return std::move(out_); }

 private:
  void Name(std::string_view suffix);
  void Labels(MetricLabels labels, std::string_view le = {});
  void Value(double v);

  std::string out_;
  std::string family_;
};

// Several expositions made by MetricsText (one per partition a node runs)
// as one: each family once, in the order first seen, with every sample of
// part i labelled `label`="<parts[i].first>" first. The parts' own
// samples must not carry `label` already.
std::string MergeLabeled(std::string_view label,
                         const std::vector<std::pair<std::string, std::string>>& parts);

// A label value as the format writes it (between the quotes).
std::string EscapeLabelValue(std::string_view v);
// A number as the format writes it: integers without a fraction, +Inf, NaN.
std::string FormatMetricValue(double v);

}  // namespace dfm
