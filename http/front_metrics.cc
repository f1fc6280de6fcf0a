#include "http/front_metrics.h"

#include "http/ingest.h"

namespace dfm {

FrontMetrics::FrontMetrics(std::vector<std::pair<std::string, std::string>> routes)
    : routes_(std::move(routes)), rows_(routes_.size() + 1) {
  for (size_t i = 0; i < routes_.size(); ++i) index_.emplace(routes_[i], i);
}

FrontMetrics::Route FrontMetrics::RouteOf(const std::string& tenant,
                                          const std::string& system) const {
  auto it = index_.find(std::make_pair(tenant, system));
  return it == index_.end() ? routes_.size() : it->second;
}

FrontMetrics::Route FrontMetrics::RouteOf(std::string_view path) const {
  std::string tenant, system;
  return ParseWebhookRoute(path, &tenant, &system) ? RouteOf(tenant, system) : routes_.size();
}

void FrontMetrics::Write(MetricsText* out) const {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  out->Family("dfm_webhooks_total", "counter",
              "Webhooks answered, by tenant, system and outcome (the answer's status or error "
              "code).");
  for (size_t r = 0; r < routes_.size(); ++r) {
    for (size_t i = 0; i < kWebhookOutcomes.size(); ++i) {
      out->Sample({{"tenant", routes_[r].first},
                   {"system", routes_[r].second},
                   {"outcome", kWebhookOutcomes[i]}},
                  static_cast<double>(rows_[r][i].load(kRelaxed)));
    }
  }
  out->Family("dfm_webhooks_unrouted_total", "counter",
              "Requests to a path that is no configured tenant and system, by outcome.");
  for (size_t i = 0; i < kWebhookOutcomes.size(); ++i) {
    const uint64_t n = rows_.back()[i].load(kRelaxed);
    if (n > 0 || kWebhookOutcomes[i] == "not_found") {
      out->Sample({{"outcome", kWebhookOutcomes[i]}}, static_cast<double>(n));
    }
  }
  out->Family("dfm_event_append_duration_seconds", "histogram",
              "From handing a request's events to the log to their being durable (webhooks "
              "and admin actions).")
      .Histo({}, append_us_.Read(), 1e-6);
}

}  // namespace dfm
