// The sync runtime's state as GET /v1/health shows it (docs/http-api.md).
//
// Contract:
// - The router and each connector actor publish their own counters here
//   after every message that changes them; any thread may read them at any
//   time without waiting on an actor. Each value is read on its own
//   (relaxed atomics): a reader may see the router's position and its
//   contact count from moments a message apart, never a torn value.
// - Connectors are added before the actors start, and by a configuration
//   reload (AddConnector, under `mu`); never removed. Readers take the set
//   with Connectors().
// - SyncHealthJson is pure: it renders what the board holds against the
//   log's head and the clock it is given.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sync/decided_view.h"
#include "util/json.h"
#include "util/metrics.h"

namespace dfm {

// The push operations GET /metrics counts apart (sync/domain_event.h);
// any other counts as "other", so the label stays a fixed set.
inline constexpr std::array<std::string_view, 12> kMetricPushOps = {
    "upsert", "mark_dnc", "opt_out", "opt_in", "send", "message",
    "call", "message_status", "note", "tags", "lists", "other"};
size_t MetricPushOp(std::string_view op);
// The pushes that carry an opt-out: how fast they reach each system is
// measured, and one held too long raises an alert (etc/prometheus).
bool IsOptOutPush(std::string_view op);

// One push operation's counts: attempts by their push.attempted outcome,
// and pushes by how they ended.
struct PushOpCounters {
  std::atomic<uint64_t> attempts_ok{0}, attempts_retry{0}, attempts_failed{0};
  std::atomic<uint64_t> succeeded{0}, dead_lettered{0}, cancelled{0};
};

// Counts per minute of the last hour, for "in the last hour" and "in the
// last few minutes" on the status page. One writer (the actor that owns
// it); any thread reads. A reader may see a minute being reset as empty.
class MinuteCounter {
 public:
  void Add(int64_t now_us, uint64_t ok, uint64_t failed);
  struct Sums {
    uint64_t ok = 0, failed = 0;
  };
  // The counts of the `minutes` (at most 60) up to and including now's.
  Sums Last(int64_t now_us, int minutes = 60) const;

 private:
  struct Slot {
    std::atomic<int64_t> minute{-1};
    std::atomic<uint64_t> ok{0}, failed{0};
  };
  std::array<Slot, 60> slots_;
};

struct RouterStatus {
  // Every webhook up to `decided` has been decided and its outcome appended
  // (the router's checkpoint trails it). It moves back when a contact actor
  // fails and the router reads again from its checkpoint.
  std::atomic<uint64_t> decided{0};
  std::atomic<uint64_t> read{0};                // last log seq the router has read
  std::atomic<uint64_t> webhooks_in_flight{0};  // read, not yet decided
  std::atomic<uint64_t> contacts_live{0};       // contact actors in memory
  std::atomic<uint64_t> facts_routed{0};
  std::atomic<uint64_t> quarantined{0};
  // Contacts whose actor failed twice in a row (their stream could not
  // be read): their facts wait, the others' go on (actors/router.h).
  std::atomic<uint64_t> contacts_held{0};

  // Webhooks the router read since the service started, per tenant and
  // system: how many, how many carried several facts (a vendor's batch),
  // and the facts they carried. Written by the router once per webhook
  // (never again when it reads one a second time); any thread reads.
  struct Inbound {
    uint64_t webhooks = 0, batched = 0, facts = 0;
  };
  void CountInbound(const std::string& tenant, const std::string& system, size_t facts) {
    std::lock_guard<std::mutex> lock(inbound_mu_);
    Inbound& in = inbound_[{tenant, system}];
    in.webhooks++;
    if (facts > 1) in.batched++;
    in.facts += facts;
  }
  Inbound InboundOf(const std::string& tenant, const std::string& system) const {
    std::lock_guard<std::mutex> lock(inbound_mu_);
    auto it = inbound_.find({tenant, system});
    return it == inbound_.end() ? Inbound{} : it->second;
  }

  // What the router has decided (sync/decided_view.h). SetDecided: its
  // reading now has decided every webhook up to `through` but `held`'s
  // keys, copied only when `held_version` changed (the router counts its
  // changes). ReadAgain: the router begins its reading again from its
  // checkpoint; the reading so far is merged into the one before (what
  // either decided stays decided). Written by the router; any thread reads a
  // consistent view. Before the router's first publication: nothing.
  template <class HeldMap>
  void SetDecided(uint64_t through, uint64_t held_version, const HeldMap& held) {
    std::lock_guard<std::mutex> lock(decided_mu_);
    decided_.now.through = through;
    if (held_version == held_version_) return;
    held_version_ = held_version;
    if (held.empty()) {
      decided_.now.held = nullptr;
      return;
    }
    auto keys = std::make_shared<std::set<uint64_t>>();
    for (const auto& h : held) keys->insert(keys->end(), h.first);
    decided_.now.held = std::move(keys);
  }
  void ReadAgain() {
    std::lock_guard<std::mutex> lock(decided_mu_);
    decided_.before = Merged(decided_.now, decided_.before);
  }
  DecidedView Decided() const {
    std::lock_guard<std::mutex> lock(decided_mu_);
    return decided_;
  }

 private:
  // One reading that has decided what either has: the one that read
  // further, its held webhooks less those the other decided.
  static DecidedView::Reading Merged(const DecidedView::Reading& a, const DecidedView::Reading& b) {
    const DecidedView::Reading& far = a.through >= b.through ? a : b;
    const DecidedView::Reading& near = &far == &a ? b : a;
    DecidedView::Reading m;
    m.through = far.through;
    if (!far.held) return m;
    auto held = std::make_shared<std::set<uint64_t>>();
    for (uint64_t seq : *far.held)
      if (!near.Has(seq)) held->insert(held->end(), seq);
    if (!held->empty()) m.held = std::move(held);
    return m;
  }

  mutable std::mutex inbound_mu_;
  std::map<std::pair<std::string, std::string>, Inbound> inbound_;
  mutable std::mutex decided_mu_;
  DecidedView decided_;
  uint64_t held_version_ = 0;
};

struct ConnectorStatus {
  std::string tenant, system;          // set before the board is shared
  std::atomic<uint64_t> held{0};       // pushes it holds (waiting or in flight)
  std::atomic<uint64_t> in_flight{0};  // requests to the vendor now
  std::atomic<uint64_t> attempts{0}, succeeded{0}, dead_lettered{0};
  std::atomic<bool> breaker_open{false};  // the circuit breaker tripped...
  std::atomic<int64_t> reopens_at_us{0};  // ...until then (after it: half-open)
  // The vendor's last answer was a 401, or the last token refresh failed.
  std::atomic<bool> auth_failing{false};
  std::atomic<int64_t> last_success_us{0};  // the last push the vendor took; 0: none yet
  // Since when the vendor is down (its breaker open, or our credentials
  // refused) in the outage going on; 0 while it answers.
  std::atomic<int64_t> down_since_us{0};
  // When an attempt last failed (retried or given up); 0: none yet.
  std::atomic<int64_t> last_failure_us{0};
  // How long the vendor took to answer the last request.
  std::atomic<int64_t> last_answer_us{0};
  // Pushes the vendor took (ok) and attempts that failed (retried or
  // given up), per minute.
  MinuteCounter minutes;
  std::array<PushOpCounters, kMetricPushOps.size()> by_op;  // indexed by MetricPushOp
  // From the opt-out's webhook (its correlation id's time) to the vendor's
  // answer taking it, per opt-out push that succeeded.
  Histogram opt_out_propagation{Histogram::PropagationBoundsUs()};
  // The webhook time of the oldest opt-out push held (waiting or in
  // flight); 0 when none is.
  std::atomic<int64_t> oldest_opt_out_us{0};
  // Opt-outs the vendor refused and the connector keeps open (never given
  // up on): how many people, and since when the oldest (0: none).
  std::atomic<uint64_t> opt_outs_refused{0};
  std::atomic<int64_t> opt_outs_refused_since_us{0};
  // Credits its answers cost today (UTC), and its daily credit budget (0:
  // none); the budget spent holds its pushes until the next day.
  std::atomic<int64_t> credits_today{0};
  std::atomic<int64_t> credit_budget{0};

  // What the vendor's client says the card should say beyond its health
  // (VendorClient::Notice: HaloPSA's duplicate Clients); "" for nothing.
  void SetNotice(std::string notice) {
    std::lock_guard<std::mutex> lock(notice_mu_);
    if (notice != notice_) notice_ = std::move(notice);
  }
  std::string Notice() const {
    std::lock_guard<std::mutex> lock(notice_mu_);
    return notice_;
  }

 private:
  mutable std::mutex notice_mu_;
  std::string notice_;
};

struct SyncStatusBoard {
  bool sync_enabled = false;  // set before the board is shared
  RouterStatus router;
  // Shared with each actor. Written directly only before the board is
  // shared; afterwards through AddConnector.
  std::vector<std::shared_ptr<ConnectorStatus>> connectors;
  mutable std::mutex mu;
  void AddConnector(std::shared_ptr<ConnectorStatus> c) {
    std::lock_guard<std::mutex> lock(mu);
    connectors.push_back(std::move(c));
  }
  std::vector<std::shared_ptr<ConnectorStatus>> Connectors() const {
    std::lock_guard<std::mutex> lock(mu);
    return connectors;
  }
};

// {"state": "running"|"off", "router": {...}, "connectors": {"<tenant>/<system>": {...}}}
// `log_last_seq`: the log's head, for how far the router is behind it.
std::string SyncHealthJson(const SyncStatusBoard& board, uint64_t log_last_seq, int64_t now_us);

// Each connector's vendor as GET /v1/health's "services" shows it:
// "down" while its breaker is open or it refuses our credentials,
// "degraded" while the breaker is half-open (a trial request may go) or an
// opt-out has waited for it more than 60 s, else "connected". Keyed
// "<tenant>/<system>".
void SyncServices(const SyncStatusBoard& board, int64_t now_us, JsonObject* out);

// The board's families for GET /metrics (docs/metrics.md): router lag,
// contacts live, and per connector pushes, breaker, auth and opt-outs.
void SyncMetrics(const SyncStatusBoard& board, uint64_t log_last_seq, int64_t now_us,
                 MetricsText* out);

}  // namespace dfm
