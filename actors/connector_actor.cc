#include "actors/connector_actor.h"

#include <algorithm>
#include <cstdlib>

#include "actors/connector_steps.h"
#include "sync/contact_model.h"
#include "util/logging.h"

namespace dfm {

using namespace connector_steps;  // NOLINT: this actor's own steps

namespace {

// A push to carry out; one it holds already is ignored.
void OnOrder(Self* self, PushOrder& o) {
  auto& state = self->state;
  std::string id = o.request.push_id;  // copied: `o` is moved below
  if (state.items.count(id)) return;
  bool urgent = Urgent(o.request);  // a deletion's mark too (connector_steps.h)
  int64_t since = 0;
  if (IsOptOutPush(o.request.op)) {
    since =
        o.correlation_id.IsZero() ? state.env->now_us() : o.correlation_id.TimestampMillis() * 1000;
    state.opt_outs_held.insert(since);
  }
  if (o.request.op == "opt_in" || o.request.op == "opt_out") Supersede(self, o.request);
  ConnectorState::Item item;
  if (o.redriven) {  // numbered by NumberRedriven before it goes
    item.unnumbered = true;
    state.unnumbered.insert(id);
  }
  item.order = std::move(o);
  item.opt_out_since = since;
  state.items[id] = std::move(item);
  (urgent ? state.urgent : state.normal).push_back(id);
  Pump(self);
}

void OnCancel(Self* self, PushCancel& cancel);

// Every push of an erased person's but its consent ones (PushCancel with no
// push id).
void CancelContact(Self* self, const PushCancel& cancel) {
  std::vector<std::string> ids;
  for (const auto& [id, item] : self->state.items) {
    if (item.order.request.contact_id == cancel.contact_id && !IsConsentOp(item.order.request.op))
      ids.push_back(id);
  }
  for (auto& id : ids) {
    PushCancel one{cancel.tenant, std::move(id), cancel.reason, {}};
    OnCancel(self, one);
  }
}

// A push the contact settled: dropped while it waits, not tried again
// once in flight.
void OnCancel(Self* self, PushCancel& cancel) {
  auto& state = self->state;
  if (cancel.push_id.empty()) return CancelContact(self, cancel);
  auto found = state.items.find(cancel.push_id);
  if (found == state.items.end()) return;
  for (auto* q : {&state.urgent, &state.normal}) {
    auto pos = std::find(q->begin(), q->end(), cancel.push_id);
    if (pos == q->end()) continue;
    q->erase(pos);  // waiting: it never goes
    state.cancelled++;
    Count(&PushOpCounters::cancelled, state, found->second);
    Drop(state, found);
    Logger("connectors")
        ->info("event=push_cancelled system={} push_id={} reason=\"{}\"", state.cfg.system,
               cancel.push_id, LogText(cancel.reason));
    Pump(self);
    return;
  }
  found->second.cancelled = true;  // in flight: no retry if it fails
}

// A token refresh ended: the grant stored before use, or the next try set.
void OnToken(Self* self, TokenDone& t) {
  auto& state = self->state;
  state.refreshing = false;
  if (state.refresh_superseded) {  // the old chain's: the grant configured anew stands
    state.refresh_superseded = false;
    Pump(self);
    return;
  }
  int64_t now = state.env->now_us();
  if (t.grant.ok) {
    Credentials fresh;
    fresh.access_token = t.grant.access_token;
    fresh.refresh_token = t.grant.refresh_token;
    fresh.expires_at_us = now + t.grant.expires_in_s * 1000000;
    // Synced before use: the old refresh token is spent. When storing
    // fails the grant is still used (it is the only valid one left),
    // and a restart would need the operator to grant again.
    Status s = StoreState(
        state, kCredentialsConsumer,
        {StateOp{CredentialsKey(state), EncodeCredentials(fresh, state.cfg.credentials), false}},
        true);
    if (!s.ok()) {
      Logger("connectors")
          ->error("event=token_store_failed system={} error=\"{}\"", state.cfg.system,
                  s.ToString());
    }
    state.creds = fresh;
    // A grant shorter-lived than the margin is refreshed at half its
    // life, not at once again (which would refresh for ever).
    state.margin_us = std::min(state.cfg.refresh_margin_us, t.grant.expires_in_s * 1000000 / 2);
    state.auth_failed = false;
    state.refresh_failed = false;
    Logger("connectors")
        ->info("event=token_refreshed system={} tenant={} expires_in_s={}", state.cfg.system,
               state.cfg.tenant, t.grant.expires_in_s);
  } else {
    state.refresh_not_before = now + state.cfg.refresh_retry_us;
    state.refresh_failed = true;
    // The grant refused for good (invalid_grant): a backfill cannot go
    // on without an operator. Anything else (5xx, no answer) is tried
    // again after refresh_retry_us with the reads still waiting.
    if (t.grant.http_status == 400 || t.grant.http_status == 401) RefuseReads(state, t.grant);
    Logger("connectors")
        ->error("event=token_refresh_failed system={} tenant={} status={} detail=\"{}\"",
                state.cfg.system, state.cfg.tenant, t.grant.http_status, LogText(t.grant.detail));
  }
  Pump(self);
}

// A configuration reload: new settings for what goes next.
void OnUpdate(Self* self, ConnectorUpdate& u) {
  auto& state = self->state;
  ConnectorSettings next = std::move(*u.settings);
  next.status = state.cfg.status;  // the board keeps its entry
  state.retired.push_back(state.cfg.client);
  const bool new_credentials =
      next.credentials.access_token != state.cfg.credentials.access_token ||
      next.credentials.refresh_token != state.cfg.credentials.refresh_token ||
      next.credentials.origin != state.cfg.credentials.origin;  // a new OAuth client
  const bool oauth = next.client->UsesOAuth();
  state.cfg = std::move(next);
  if (new_credentials || oauth) {
    state.read_auth_retries = 0;
    state.refresh_failed = false;
    state.refresh_not_before = 0;
  }
  if (new_credentials) {
    state.creds = state.cfg.credentials;
    state.auth_failed = false;
    state.refresh_superseded = state.refreshing;
    // An OAuth grant given anew (re-authorized) is the newest: stored, so
    // a restart does not go back to the one it replaced (LoadStored).
    if (oauth) {
      Status s = StoreState(state, kCredentialsConsumer,
                            {StateOp{CredentialsKey(state),
                                     EncodeCredentials(state.creds, state.cfg.credentials), false}},
                            true);
      if (!s.ok())
        Logger("connectors")
            ->error("event=token_store_failed system={} error=\"{}\"", state.cfg.system,
                    s.ToString());
    }
  } else if (oauth) {
    // The configured grant is the one this actor started from, spent since
    // if it refreshed (GoHighLevel rotates refresh tokens): the live grant
    // stays, and the new client asks for a fresh one with it before its
    // next request (its client id or secret may be new).
    state.auth_failed = true;
  }
  // What the vendor said (a Retry-After, the day's count) and an open
  // breaker outlive a reload: new limits apply to what goes next.
  state.limiter->SetLimits(state.cfg.rate_limit, state.cfg.rate_window_us, state.cfg.daily_limit,
                           state.env->now_us());
  state.breaker->SetLimits(state.cfg.breaker_threshold, state.cfg.breaker_open_us);
  state.pairs.clear();
  Logger("connectors")
      ->info("event=connector_reloaded system={} tenant={} held={}", state.cfg.system,
             state.cfg.tenant, state.items.size());
  Pump(self);
}

// A grant and the day's credits an earlier run stored.
void LoadStored(ConnectorState& st) {
  std::string stored;
  if (st.env->log->GetConsumerState(kCredentialsConsumer, CredentialsKey(st), &stored).ok())
    st.creds =
        NewestGrant(st.cfg.credentials, stored);  // an earlier run's refresh, unless granted anew
  if (st.env->log->GetConsumerState(kCreditsConsumer, CredentialsKey(st), &stored).ok()) {
    const size_t nl = stored.find('\n');
    if (nl != std::string::npos) {
      st.credits_day = std::strtoll(stored.c_str(), nullptr, 10);
      st.credits_spent = std::strtoll(stored.c_str() + nl + 1, nullptr, 10);
    }
  }
}

}  // namespace

caf::behavior ConnectorActor(Self* self, std::shared_ptr<const SyncEnv> env, caf::actor router,
                             ConnectorSettings cfg) {
  auto& st = self->state;
  st.env = std::move(env);
  st.router = std::move(router);
  st.cfg = std::move(cfg);
  st.limiter =
      std::make_unique<RateLimiter>(st.cfg.rate_limit, st.cfg.rate_window_us, st.cfg.daily_limit);
  st.breaker = std::make_unique<CircuitBreaker>(st.cfg.breaker_threshold, st.cfg.breaker_open_us);
  st.rng.seed(st.cfg.seed ? st.cfg.seed : static_cast<uint64_t>(st.env->now_us()));
  st.creds = st.cfg.credentials;
  st.margin_us = st.cfg.refresh_margin_us;
  if (st.env->vendor_records)
    st.records = std::make_shared<VendorRecords>(
        st.env->vendor_records, st.cfg.tenant + "/" + st.cfg.system, st.env->now_us);
  LoadStored(st);
  return {
      [self](PushOrder& o) { OnOrder(self, o); },
      [self](PushCancel& cancel) { OnCancel(self, cancel); },
      [self](HttpDone& d) { OnDone(self, d); },
      [self](SendRecorded& r) { OnSendRecorded(self, r); },
      [self](BackfillRead& r) {
        self->state.reads.push_back(std::move(r));
        Pump(self);
      },
      [self](ReadDone& d) { OnReadDone(self, d); },
      [self](TokenDone& t) { OnToken(self, t); },
      [self](ConnectorUpdate& u) { OnUpdate(self, u); },
      [self](caf::actor& r) { self->state.router = std::move(r); },
      [self](wake_atom) {
        self->state.wake_at = 0;
        Pump(self);
      },
  };
}

}  // namespace dfm
