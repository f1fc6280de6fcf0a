#include "http/front_metrics.h"

#include "http/ingest.h"

namespace dfm {

FrontMetrics::FrontMetrics(std::vector<std::pair<std::string, std::string>> routes)
    : rows_(new Row[kMaxRoutes + 1]) {
  for (size_t r = 0; r <= kMaxRoutes; ++r)
    for (auto& n : rows_[r]) n.store(0, std::memory_order_relaxed);
  AddRoutes(routes);
}

void FrontMetrics::AddRoutes(const std::vector<std::pair<std::string, std::string>>& routes) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (const auto& r : routes) {
    if (index_.count(r) || routes_.size() >= kMaxRoutes) continue;
    routes_.push_back(r);
    index_.emplace(r, routes_.size());  // row 0 is the unrouted one
  }
}

FrontMetrics::Route FrontMetrics::RouteOf(const std::string& tenant,
                                          const std::string& system) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = index_.find(std::make_pair(tenant, system));
  return it == index_.end() ? 0 : it->second;
}

FrontMetrics::Route FrontMetrics::RouteOf(std::string_view path) const {
  std::string tenant, system;
  return ParseWebhookRoute(path, &tenant, &system) ? RouteOf(tenant, system) : 0;
}

void FrontMetrics::Write(MetricsText* out) const {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  out->Family("dfm_webhooks_total", "counter",
              "Webhooks answered, by tenant, system and outcome (the answer's status or error "
              "code).");
  std::vector<std::pair<std::string, std::string>> routes;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    routes = routes_;
  }
  for (size_t r = 0; r < routes.size(); ++r) {
    for (size_t i = 0; i < kWebhookOutcomes.size(); ++i) {
      out->Sample({{"tenant", routes[r].first},
                   {"system", routes[r].second},
                   {"outcome", kWebhookOutcomes[i]}},
                  static_cast<double>(rows_[r + 1][i].load(kRelaxed)));
    }
  }
  out->Family("dfm_webhooks_unrouted_total", "counter",
              "Requests to a path that is no configured tenant and system, by outcome.");
  for (size_t i = 0; i < kWebhookOutcomes.size(); ++i) {
    const uint64_t n = rows_[0][i].load(kRelaxed);
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
