// The HTTP front's own metrics for GET /metrics (docs/metrics.md):
// webhooks by tenant, system and outcome, the time from handing an event
// to the log to its being durable, and refused admin credentials.
//
// Contract: pure (no server inside); counting is lock-free from any I/O
// thread. Label values come only from the configured routes given at
// construction and the fixed outcome list: a webhook for a path that is
// not a configured (tenant, system) counts in dfm_webhooks_unrouted_total,
// without the path's words, so a stranger cannot grow the label set.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/metrics.h"

namespace dfm {

// The `outcome` label of dfm_webhooks_total: the answer's `status`
// (accepted, duplicate, ignored) or its `error` code (docs/http-api.md);
// anything else counts as "other".
inline constexpr std::array<std::string_view, 14> kWebhookOutcomes = {
    "accepted",       "duplicate",          "ignored",
    "not_found",      "method_not_allowed", "body_too_large",
    "rate_limited",   "unsupported_media_type", "unauthorized",
    "unknown_account", "malformed_body",    "log_unavailable",
    "shutting_down",  "other"};

// The index of `outcome` in kWebhookOutcomes ("other"'s when not there).
constexpr size_t WebhookOutcome(std::string_view outcome) {
  for (size_t i = 0; i + 1 < kWebhookOutcomes.size(); ++i) {
    if (kWebhookOutcomes[i] == outcome) return i;
  }
  return kWebhookOutcomes.size() - 1;
}

class FrontMetrics {
 public:
  // Routes beyond this many (a reload that adds thousands of tenants) are
  // counted with the unrouted paths.
  static constexpr size_t kMaxRoutes = 4096;
  explicit FrontMetrics(std::vector<std::pair<std::string, std::string>> routes);
  // A configuration reload's new routes (the others are kept: counters only
  // grow). Thread-safe against counting and Write.
  void AddRoutes(const std::vector<std::pair<std::string, std::string>>& routes);

  // A configured (tenant, system), or the row of paths that are none:
  // found once per request, so that counting its answer (on the log's
  // writer thread, for an append) is one atomic add.
  using Route = size_t;
  Route RouteOf(const std::string& tenant, const std::string& system) const;
  // By the request's path ("/webhooks/{system}" or
  // "/t/{tenant}/webhooks/{system}").
  Route RouteOf(std::string_view path) const;
  // `outcome`: WebhookOutcome(...).
  void Count(Route route, size_t outcome) {
    rows_[route][outcome].fetch_add(1, std::memory_order_relaxed);
  }
  void CountWebhook(std::string_view path, std::string_view outcome) {
    Count(RouteOf(path), WebhookOutcome(outcome));
  }
  void ObserveAppend(int64_t micros) { append_us_.Observe(micros); }

  void Write(MetricsText* out) const;

 private:
  using Row = std::array<std::atomic<uint64_t>, kWebhookOutcomes.size()>;

  mutable std::shared_mutex mu_;  // guards routes_ and index_ (rows_ never moves)
  std::vector<std::pair<std::string, std::string>> routes_;
  std::map<std::pair<std::string, std::string>, size_t> index_;
  std::unique_ptr<Row[]> rows_;  // row 0: the unrouted paths; then one per route
  Histogram append_us_{Histogram::LatencyBoundsUs()};
};

}  // namespace dfm
