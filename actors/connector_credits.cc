#include <algorithm>

#include "actors/connector_steps.h"
#include "sync/contact_model.h"
#include "util/logging.h"

namespace dfm::connector_steps {

std::string CredentialsKey(const ConnectorState& st) {
  return dfm::CredentialsKey(st.cfg.tenant, st.cfg.system);
}

// Starts a new count when the UTC day has changed.
void RollCreditDay(ConnectorState& st, int64_t now) {
  const int64_t day = now / kDayUs;
  if (day != st.credits_day) {
    st.credits_day = day;
    st.credits_spent = 0;
  }
}

// Stores connector state the log cannot give back; `durable`: synced, and
// in a cluster written for the tenant's next owner too, before it returns.
Status StoreState(ConnectorState& st, const char* consumer, const std::vector<StateOp>& ops,
                  bool durable) {
  if (!durable) return st.env->log->CommitConsumer(consumer, 0, ops);
  Status s = st.env->log->CommitConsumerDurable(consumer, 0, ops);
  if (s.ok() && st.env->replicate_state) s = st.env->replicate_state(st.cfg.tenant, consumer, ops);
  return s;
}

namespace {

// Stores the day's spent and reserved credits; `durable`: synced before it
// returns (a reservation, or a charge past one). Only durable writes are
// replicated: a charge never raises the count past its reservation.
Status StoreCredits(ConnectorState& st, bool durable) {
  const std::vector<StateOp> ops = {
      StateOp{CredentialsKey(st),
              std::to_string(st.credits_day) + "\n" +
                  std::to_string(st.credits_spent + st.credits_reserved),
              false}};
  Status s = StoreState(st, kCreditsConsumer, ops, durable);
  if (!s.ok())
    Logger("connectors")
        ->error("event=credits_store_failed system={} error=\"{}\"", st.cfg.system, s.ToString());
  return s;
}

}  // namespace

// Reserves what `it` may cost before it goes. False when the budget has no
// room for it now: `*until` is when to look again (0: when an answer in
// flight frees some), or when the reservation could not be made durable.
bool ReserveCredits(ConnectorState& st, ConnectorState::Item& it, int64_t now, int64_t* until) {
  *until = 0;
  if (st.cfg.daily_credit_budget <= 0 || it.credits_reserved > 0)
    return true;  // none, or held still
  PushRequest req;
  req.op = it.order.request.op;
  req.fields = it.order.request.fields;
  const int most = st.cfg.client->MaxCredits(req);
  RollCreditDay(st, now);
  if (st.credits_spent >= st.cfg.daily_credit_budget) {
    *until = (now / kDayUs + 1) * kDayUs;  // the next UTC day
    return false;
  }
  if (most <= 0) return true;
  const int64_t left = st.cfg.daily_credit_budget - st.credits_spent - st.credits_reserved;
  if (left <= 0) return false;  // an answer in flight may free some
  const int cost =
      static_cast<int>(std::min<int64_t>(most, left));  // the client asks only what fits
  st.credits_reserved += cost;
  if (!StoreCredits(st, /*durable=*/true).ok()) {
    st.credits_reserved -= cost;
    *until = now + st.env->append_retry_us;
    return false;
  }
  it.credits_reserved = cost;
  return true;
}

// Frees `it`'s reservation and charges `credits` (what its answer said it
// cost; all it reserved when it may have been done unanswered).
void ChargeCredits(ConnectorState& st, ConnectorState::Item& it, int64_t now, int credits) {
  const int reserved = it.credits_reserved;
  it.credits_reserved = 0;
  if (reserved <= 0 && credits <= 0) return;
  RollCreditDay(st, now);
  st.credits_reserved = std::max<int64_t>(0, st.credits_reserved - reserved);
  st.credits_spent += std::max(credits, 0);
  // What is stored only shrinks, unless the answer cost more than was
  // reserved: then it is synced as a reservation is. A store that fails is
  // logged (StoreCredits); the count in memory is right, and the next
  // reservation or charge stores it whole.
  (void)StoreCredits(st, /*durable=*/credits > reserved);
}

}  // namespace dfm::connector_steps
