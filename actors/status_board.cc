#include "actors/status_board.h"

#include <algorithm>
#include <initializer_list>

#include "util/json.h"

namespace dfm {

void MinuteCounter::Add(int64_t now_us, uint64_t ok, uint64_t failed) {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  const int64_t minute = now_us / 60000000;
  Slot& slot = slots_[static_cast<size_t>(minute % 60)];
  if (slot.minute.load(kRelaxed) != minute) {
    slot.ok.store(0, kRelaxed);
    slot.failed.store(0, kRelaxed);
    slot.minute.store(minute, kRelaxed);
  }
  slot.ok.fetch_add(ok, kRelaxed);
  slot.failed.fetch_add(failed, kRelaxed);
}

MinuteCounter::Sums MinuteCounter::Last(int64_t now_us, int minutes) const {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  const int64_t minute = now_us / 60000000;
  Sums s;
  for (const Slot& slot : slots_) {
    const int64_t m = slot.minute.load(kRelaxed);
    if (m > minute - minutes && m <= minute) {
      s.ok += slot.ok.load(kRelaxed);
      s.failed += slot.failed.load(kRelaxed);
    }
  }
  return s;
}

namespace {

enum class Breaker { kClosed, kOpen, kHalfOpen };

// The breaker as of `now_us`: the actor publishes "not closed" and when it
// reopens; past that time one trial request may go (half-open).
Breaker BreakerAt(const ConnectorStatus& c, int64_t now_us) {
  if (!c.breaker_open.load(std::memory_order_relaxed)) return Breaker::kClosed;
  return now_us < c.reopens_at_us.load(std::memory_order_relaxed) ? Breaker::kOpen
                                                                  : Breaker::kHalfOpen;
}

}  // namespace

std::string SyncHealthJson(const SyncStatusBoard& board, uint64_t log_last_seq, int64_t now_us) {
  if (!board.sync_enabled) return JsonObject().Str("state", "off").Finish();
  constexpr auto kRelaxed = std::memory_order_relaxed;
  const RouterStatus& r = board.router;
  const uint64_t decided = r.decided.load(kRelaxed);
  JsonObject router;
  router.UInt("decided_seq", decided)
      .UInt("behind", log_last_seq > decided ? log_last_seq - decided : 0)
      .UInt("read_seq", r.read.load(kRelaxed))
      .UInt("webhooks_in_flight", r.webhooks_in_flight.load(kRelaxed))
      .UInt("contacts_live", r.contacts_live.load(kRelaxed))
      .UInt("facts_routed", r.facts_routed.load(kRelaxed))
      .UInt("quarantined", r.quarantined.load(kRelaxed))
      .UInt("contacts_held", r.contacts_held.load(kRelaxed));
  JsonObject connectors;
  for (const auto& c : board.Connectors()) {
    JsonObject o;
    const Breaker breaker = BreakerAt(*c, now_us);
    o.Str("breaker", breaker == Breaker::kClosed ? "closed"
                     : breaker == Breaker::kOpen ? "open"
                                                 : "half_open");
    if (breaker == Breaker::kOpen) {
      o.Int("reopens_in_ms", (c->reopens_at_us.load(kRelaxed) - now_us + 999) / 1000);
    }
    o.Str("auth", c->auth_failing.load(kRelaxed) ? "failing" : "ok")
        .UInt("held", c->held.load(kRelaxed))
        .UInt("in_flight", c->in_flight.load(kRelaxed))
        .UInt("attempts", c->attempts.load(kRelaxed))
        .UInt("succeeded", c->succeeded.load(kRelaxed))
        .UInt("dead_lettered", c->dead_lettered.load(kRelaxed));
    if (const int64_t budget = c->credit_budget.load(kRelaxed); budget > 0) {
      o.Int("credits_today", c->credits_today.load(kRelaxed)).Int("credit_budget", budget);
    }
    connectors.Raw(c->tenant + "/" + c->system, o.Finish());
  }
  return JsonObject()
      .Str("state", "running")
      .Raw("router", router.Finish())
      .Raw("connectors", connectors.Finish())
      .Finish();
}

void SyncServices(const SyncStatusBoard& board, int64_t now_us, JsonObject* out) {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  constexpr int64_t kOptOutLate = 60 * 1000000;
  for (const auto& c : board.Connectors()) {
    const Breaker breaker = BreakerAt(*c, now_us);
    const int64_t since = c->oldest_opt_out_us.load(kRelaxed);
    const char* state =
        breaker == Breaker::kOpen || c->auth_failing.load(kRelaxed) ? "down"
        : breaker == Breaker::kHalfOpen || (since > 0 && now_us - since > kOptOutLate)
            ? "degraded"
            : "connected";
    out->Str(c->tenant + "/" + c->system, state);
  }
}

size_t MetricPushOp(std::string_view op) {
  for (size_t i = 0; i + 1 < kMetricPushOps.size(); ++i) {
    if (kMetricPushOps[i] == op) return i;
  }
  return kMetricPushOps.size() - 1;
}

bool IsOptOutPush(std::string_view op) { return op == "opt_out" || op == "mark_dnc"; }

namespace {

// The router's families: its lag, what is in flight, what it set aside.
void RouterMetrics(const SyncStatusBoard& board, uint64_t log_last_seq, MetricsText* out) {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  const RouterStatus& r = board.router;
  const uint64_t decided = r.decided.load(kRelaxed);
  out->Family("dfm_router_lag_events", "gauge",
              "Events in the log after the last one the router has decided.")
      .Sample({}, d(log_last_seq > decided ? log_last_seq - decided : 0));
  out->Family("dfm_router_webhooks_in_flight", "gauge", "Webhooks read by the router, not decided yet.")
      .Sample({}, d(r.webhooks_in_flight.load(kRelaxed)));
  out->Family("dfm_contacts_live", "gauge", "Contact actors in memory.")
      .Sample({}, d(r.contacts_live.load(kRelaxed)));
  out->Family("dfm_router_facts_routed_total", "counter", "Facts the router handed to contact actors.")
      .Sample({}, d(r.facts_routed.load(kRelaxed)));
  out->Family("dfm_router_quarantined_total", "counter",
              "Webhooks the router set aside because they could not be decided.")
      .Sample({}, d(r.quarantined.load(kRelaxed)));
  out->Family("dfm_router_contacts_held", "gauge",
              "Contacts whose actor failed twice in a row (their stream could not be read): "
              "their facts wait, tried again later; the others' go on.")
      .Sample({}, d(r.contacts_held.load(kRelaxed)));
}

// Each connector's gauges: what it holds and spends, what is in flight.
void ConnectorLoadMetrics(const SyncStatusBoard& board, MetricsText* out) {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  auto each = [&](const auto& fn) {
    for (const auto& c : board.Connectors()) fn(*c);
  };
  out->Family("dfm_connector_pushes_held", "gauge",
              "Pushes a connector holds: waiting (also for a retry) or in flight.");
  each([&](const ConnectorStatus& c) {
    out->Sample({{"tenant", c.tenant}, {"system", c.system}}, d(c.held.load(kRelaxed)));
  });
  out->Family("dfm_connector_credits_spent_today", "gauge",
              "Credits the vendor's answers cost today (UTC): an enrichment system's paid lookups.");
  each([&](const ConnectorStatus& c) {
    out->Sample({{"tenant", c.tenant}, {"system", c.system}}, d(c.credits_today.load(kRelaxed)));
  });
  out->Family("dfm_connector_requests_in_flight", "gauge", "Requests to the vendor now.");
  each([&](const ConnectorStatus& c) {
    out->Sample({{"tenant", c.tenant}, {"system", c.system}}, d(c.in_flight.load(kRelaxed)));
  });
}

// Each connector's pushes by operation and outcome.
void PushMetrics(const SyncStatusBoard& board, MetricsText* out) {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  auto each = [&](const auto& fn) {
    for (const auto& c : board.Connectors()) fn(*c);
  };
  using Counter = std::atomic<uint64_t> PushOpCounters::*;
  // One sample per connector, operation and outcome, each from its counter.
  auto by_op = [&](std::initializer_list<std::pair<std::string_view, Counter>> outcomes) {
    each([&](const ConnectorStatus& c) {
      for (size_t i = 0; i < kMetricPushOps.size(); ++i) {
        for (const auto& [outcome, counter] : outcomes) {
          out->Sample({{"tenant", c.tenant}, {"system", c.system}, {"op", kMetricPushOps[i]},
                       {"outcome", outcome}},
                      d((c.by_op[i].*counter).load(kRelaxed)));
        }
      }
    });
  };
  out->Family("dfm_push_attempts_total", "counter",
              "Requests sent for pushes, by their push.attempted outcome: ok, retry (tried "
              "again later) or failed.");
  by_op({{"ok", &PushOpCounters::attempts_ok},
         {"retry", &PushOpCounters::attempts_retry},
         {"failed", &PushOpCounters::attempts_failed}});
  out->Family("dfm_pushes_total", "counter",
              "Pushes ended: succeeded, dead_lettered (given up; see dfm dead-letters) or "
              "cancelled (the contact refused it while it waited: an opt-out, its "
              "campaign cancelled, or the person erased).");
  by_op({{"succeeded", &PushOpCounters::succeeded},
         {"dead_lettered", &PushOpCounters::dead_lettered},
         {"cancelled", &PushOpCounters::cancelled}});
}

// Each connector's health: breaker, credentials, last success, and the
// opt-outs' propagation, refusals and oldest undelivered.
void ConnectorHealthMetrics(const SyncStatusBoard& board, int64_t now_us, MetricsText* out) {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  auto each = [&](const auto& fn) {
    for (const auto& c : board.Connectors()) fn(*c);
  };
  out->Family("dfm_connector_breaker_open", "gauge",
              "1 while the connector's circuit breaker is not closed (open, or half-open "
              "with one trial request allowed).");
  each([&](const ConnectorStatus& c) {
    out->Sample({{"tenant", c.tenant}, {"system", c.system}}, c.breaker_open.load(kRelaxed) ? 1 : 0);
  });
  out->Family("dfm_connector_auth_failing", "gauge",
              "1 while the vendor's last answer refused the credentials (401) or the last "
              "token refresh failed.");
  each([&](const ConnectorStatus& c) {
    out->Sample({{"tenant", c.tenant}, {"system", c.system}}, c.auth_failing.load(kRelaxed) ? 1 : 0);
  });
  out->Family("dfm_connector_last_success_timestamp_seconds", "gauge",
              "When the vendor last took a push (Unix time); absent until one has.");
  each([&](const ConnectorStatus& c) {
    const int64_t at = c.last_success_us.load(kRelaxed);
    if (at > 0) out->Sample({{"tenant", c.tenant}, {"system", c.system}}, static_cast<double>(at) / 1e6);
  });
  out->Family("dfm_opt_out_propagation_seconds", "histogram",
              "From an opt-out's webhook to the system taking it, per opt-out push that succeeded.");
  each([&](const ConnectorStatus& c) {
    out->Histo({{"tenant", c.tenant}, {"system", c.system}}, c.opt_out_propagation.Read(), 1e-6);
  });
  out->Family("dfm_opt_outs_refused", "gauge",
              "People whose opt-out the system refused: kept open and tried again until it "
              "lands (over 0 is a compliance alert).");
  each([&](const ConnectorStatus& c) {
    out->Sample({{"tenant", c.tenant}, {"system", c.system}},
                static_cast<double>(c.opt_outs_refused.load(kRelaxed)));
  });
  out->Family("dfm_opt_out_oldest_undelivered_seconds", "gauge",
              "Age of the oldest opt-out the connector still holds (0 when none): over 60 s "
              "is a compliance alert.");
  each([&](const ConnectorStatus& c) {
    const int64_t since = c.oldest_opt_out_us.load(kRelaxed);
    out->Sample({{"tenant", c.tenant}, {"system", c.system}},
                since > 0 && now_us > since ? static_cast<double>(now_us - since) / 1e6 : 0);
  });
}

}  // namespace

void SyncMetrics(const SyncStatusBoard& board, uint64_t log_last_seq, int64_t now_us,
                 MetricsText* out) {
  out->Family("dfm_sync_enabled", "gauge",
              "1 when [sync] is enabled: the router and connectors run.")
      .Sample({}, board.sync_enabled ? 1 : 0);
  if (!board.sync_enabled) return;
  RouterMetrics(board, log_last_seq, out);
  ConnectorLoadMetrics(board, out);
  PushMetrics(board, out);
  ConnectorHealthMetrics(board, now_us, out);
}

}  // namespace dfm
