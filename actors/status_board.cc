#include "actors/status_board.h"

#include <algorithm>

#include "util/json.h"

namespace dfm {

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
      .UInt("quarantined", r.quarantined.load(kRelaxed));
  JsonObject connectors;
  for (const auto& c : board.connectors) {
    JsonObject o;
    const int64_t reopens = c->reopens_at_us.load(kRelaxed);
    const bool open = c->breaker_open.load(kRelaxed);
    o.Str("breaker", !open ? "closed" : now_us < reopens ? "open" : "half_open");
    if (open && now_us < reopens) o.Int("reopens_in_ms", (reopens - now_us + 999) / 1000);
    o.Str("auth", c->auth_failing.load(kRelaxed) ? "failing" : "ok")
        .UInt("held", c->held.load(kRelaxed))
        .UInt("in_flight", c->in_flight.load(kRelaxed))
        .UInt("attempts", c->attempts.load(kRelaxed))
        .UInt("succeeded", c->succeeded.load(kRelaxed))
        .UInt("dead_lettered", c->dead_lettered.load(kRelaxed));
    connectors.Raw(c->tenant + "/" + c->system, o.Finish());
  }
  return JsonObject()
      .Str("state", "running")
      .Raw("router", router.Finish())
      .Raw("connectors", connectors.Finish())
      .Finish();
}

}  // namespace dfm
