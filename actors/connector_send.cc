#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "actors/connector_steps.h"
#include "sync/consent.h"
#include "sync/contact_model.h"
#include "util/logging.h"

namespace dfm::connector_steps {

namespace {

// Shows the actor's state on the status board (GET /v1/health).
void Publish(Self* self) {
  auto& st = self->state;
  ConnectorStatus* b = st.cfg.status.get();
  if (!b) return;
  constexpr auto kRelaxed = std::memory_order_relaxed;
  const int64_t now = st.env->now_us();
  b->held.store(st.items.size(), kRelaxed);
  b->in_flight.store(st.in_flight, kRelaxed);
  b->attempts.store(st.attempts, kRelaxed);
  b->succeeded.store(st.succeeded, kRelaxed);
  b->dead_lettered.store(st.dead, kRelaxed);
  b->breaker_open.store(st.breaker->state(now) != CircuitBreaker::State::kClosed, kRelaxed);
  b->reopens_at_us.store(st.breaker->reopens_at(), kRelaxed);
  const bool auth_failing = st.last_answer_401 || st.refresh_failed;
  b->auth_failing.store(auth_failing, kRelaxed);
  const bool down = auth_failing || st.breaker->state(now) != CircuitBreaker::State::kClosed;
  if (!down) {
    b->down_since_us.store(0, kRelaxed);
  } else if (b->down_since_us.load(kRelaxed) == 0) {
    b->down_since_us.store(now, kRelaxed);
  }
  b->oldest_opt_out_us.store(st.opt_outs_held.empty() ? 0 : *st.opt_outs_held.begin(), kRelaxed);
  b->opt_outs_refused.store(st.refused_people.size(), kRelaxed);
  b->opt_outs_refused_since_us.store(st.opt_outs_refused.empty() ? 0 : *st.opt_outs_refused.begin(),
                                     kRelaxed);
  b->credits_today.store(st.credits_day == now / kDayUs ? st.credits_spent : 0, kRelaxed);
  b->credit_budget.store(st.cfg.daily_credit_budget, kRelaxed);
  b->SetNotice(st.cfg.client->Notice());
}

// The status board's counts for `it`'s operation; null without a board.
PushOpCounters* Counts(ConnectorState& st, const ConnectorState::Item& it) {
  ConnectorStatus* b = st.cfg.status.get();
  return b ? &b->by_op[MetricPushOp(it.order.request.op)] : nullptr;
}
}  // namespace

void Count(std::atomic<uint64_t> PushOpCounters::*which, ConnectorState& st,
           const ConnectorState::Item& it) {
  if (PushOpCounters* c = Counts(st, it)) (c->*which).fetch_add(1, std::memory_order_relaxed);
}

// A push leaves the connector (ended, or cancelled before it went).
void Drop(ConnectorState& st, std::map<std::string, ConnectorState::Item>::iterator found) {
  if (found->second.credits_reserved > 0) ChargeCredits(st, found->second, st.env->now_us(), 0);
  if (found->second.opt_out_since != 0) {
    st.opt_outs_held.erase(st.opt_outs_held.find(found->second.opt_out_since));
  }
  if (found->second.refused_since != 0) {
    st.opt_outs_refused.erase(st.opt_outs_refused.find(found->second.refused_since));
    auto person = st.refused_people.find(found->second.order.request.contact_id);
    if (person != st.refused_people.end() && --person->second <= 0) st.refused_people.erase(person);
  }
  if (found->second.hold_unrecorded) st.holds_unrecorded--;
  if (found->second.unnumbered) st.unnumbered.erase(found->first);
  st.items.erase(found);
}

void WakeAt(Self* self, int64_t at) {
  auto& st = self->state;
  int64_t now = st.env->now_us();
  if (st.wake_at > now && st.wake_at <= at) return;  // an earlier wake is already set
  st.wake_at = at;
  self->delayed_send(self, std::chrono::microseconds(std::max<int64_t>(at - now, 0)),
                     wake_atom::value);
}

DomainEvent Event(const ConnectorState::Item& it, std::string_view type) {
  DomainEvent e;
  e.type = std::string(type);
  e.contact_id = it.order.request.contact_id;
  e.system = it.order.request.system;
  e.push_id = it.order.request.push_id;
  e.op = it.order.request.op;
  e.channel = it.order.request.channel;
  e.message_key = it.order.request.message_key;
  e.attempt = it.attempt;
  // An upsert's dead letter names the values that never arrived (the
  // contact forgets only those: ApplyPushEnded), as its success does. A
  // send's names the address it went to: a carrier's refusal is that
  // address's opt-out (DecideCarrierOptOut), whatever the contact's is now.
  if (type == ev::kPushDeadLettered && e.op == "upsert") e.fields = it.order.request.fields;
  if (type == ev::kPushDeadLettered && e.op == "send") {
    for (const char* f : {fields::kPhone, fields::kEmail}) {
      auto v = it.order.request.fields.find(f);
      if (v != it.order.request.fields.end()) e.fields[f] = v->second;
    }
  }
  return e;
}

void Report(Self* self, const ConnectorState::Item& it, std::vector<DomainEvent> events) {
  if (ConnectorStatus* b = self->state.cfg.status.get()) {
    const int64_t now = self->state.env->now_us();
    for (const auto& e : events) {
      if (e.type != ev::kPushAttempted) continue;
      const bool ok = e.outcome == "ok";
      b->minutes.Add(now, ok ? 1 : 0, ok ? 0 : 1);
      if (!ok) b->last_failure_us.store(now, std::memory_order_relaxed);
    }
  }
  PushReport r{self->state.cfg.tenant, it.order.request.contact_id, std::move(events),
               it.order.request_id, it.order.correlation_id};
  self->send(self->state.router, std::move(r));
}

namespace {

void Refresh(Self* self) {
  auto& st = self->state;
  st.refreshing = true;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.cfg.client->RefreshToken(st.creds,
                              [me](TokenGrant g) { caf::anon_send(me, TokenDone{std::move(g)}); });
}
}  // namespace

// A consent push for a contact supersedes its open refused opt-outs
// waiting for the same channels (or fewer): an opt_in (the person took the
// opt-out back) or an opt_out (a repeated STOP: asked again now). Each is
// settled with push.dead_lettered, outcome "superseded".
void Supersede(Self* self, const DomainEvent& next) {
  auto& st = self->state;
  const std::vector<std::string> in = SplitChannels(next.channel);
  for (auto* q : {&st.urgent, &st.normal}) {
    for (auto i = q->begin(); i != q->end();) {
      auto found = st.items.find(*i);
      const DomainEvent& req = found->second.order.request;
      bool covered = found->second.refused_since != 0 && req.op == "opt_out" &&
                     req.contact_id == next.contact_id;
      for (const auto& ch : SplitChannels(req.channel))
        covered = covered && std::find(in.begin(), in.end(), ch) != in.end();
      if (!covered) {
        ++i;
        continue;
      }
      i = q->erase(i);
      DomainEvent dead = Event(found->second, ev::kPushDeadLettered);
      dead.outcome = "superseded";
      dead.reason = SupersededReason(next.op, next.push_id, st.cfg.system);
      st.cancelled++;
      Count(&PushOpCounters::cancelled, st, found->second);
      Report(self, found->second, {std::move(dead)});
      Drop(st, found);
    }
  }
}

std::string SendingKey(const std::string& push_id, int generation) {
  std::string k = "r/" + push_id + "/sending";
  if (generation > 0) k += "/" + std::to_string(generation);
  return k;
}

std::string HeldKey(const std::string& push_id, int generation) {
  return "r/" + push_id + "/held/" + std::to_string(generation);
}

void RecordHeld(Self* self, const ConnectorState::Item& it) {
  auto& st = self->state;
  st.in_flight++;
  st.busy.insert(it.order.request.contact_id);
  DomainEvent e = Event(it, ev::kPushHeld);
  e.attempt = it.attempt + 1;
  e.reason = it.held_reason;
  const std::string id = it.order.request.push_id;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.env->log->AppendAsync(
      SendMarker(st, it, std::move(e), HeldKey(id, it.generation - 1)),
      [me, id](const Status& s, const std::vector<AppendOutcome>&) {
        caf::anon_send(me, SendRecorded{id, s.ok() ? "" : s.ToString(), false, true});
      });
}

void GiveUpGeneration(Self* self, ConnectorState::Item& it, std::string reason) {
  auto& st = self->state;
  it.sending_recorded = false;
  it.held_reason = std::move(reason);
  it.hold_unrecorded = true;
  st.holds_unrecorded++;
  ++it.generation;
  RecordHeld(self, it);
}

std::vector<EventDraft> SendMarker(const ConnectorState& st, const ConnectorState::Item& it,
                                   DomainEvent e, std::string key) {
  EventDraft d = ToDraft(e, st.cfg.tenant, ContactStream(it.order.request.contact_id),
                         it.order.request_id, it.order.correlation_id);
  d.idempotency_system = kDecisionKeySystem;
  d.idempotency_key = std::move(key);
  std::vector<EventDraft> drafts;
  drafts.push_back(std::move(d));
  return drafts;
}

namespace {

// A push the vendor could carry out twice (MayApplyTwice) goes only once
// its push.sending is durable in the contact's stream: counted in flight
// meanwhile, answered by SendRecorded (OnSendRecorded). True when that
// append was started, so the request waits.
bool RecordSending(Self* self, const std::string& push_id) {
  auto& st = self->state;
  auto& it = st.items.at(push_id);
  if (it.sending_recorded || !MayApplyTwice(st, it)) return false;
  if (it.hold_unrecorded) {  // (Pick leaves it to RewriteHolds) its last hold first
    st.breaker->OnNeutral();
    RecordHeld(self, it);
    return true;
  }
  st.in_flight++;
  st.recording++;
  st.busy.insert(it.order.request.contact_id);
  DomainEvent e = Event(it, ev::kPushSending);
  e.attempt = it.attempt + 1;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.env->log->AppendAsync(
      SendMarker(st, it, std::move(e), SendingKey(push_id, it.generation)),
      [me, push_id](const Status& s, const std::vector<AppendOutcome>& o) {
        caf::anon_send(me, SendRecorded{push_id, s.ok() ? "" : s.ToString(),
                                        s.ok() && !o.empty() && o[0].duplicate});
      });
  return true;
}
}  // namespace

void Send(Self* self, const std::string& push_id) {
  auto& st = self->state;
  if (RecordSending(self, push_id)) return;
  auto& it = st.items.at(push_id);
  int64_t now = st.env->now_us();
  // Spent as the request goes: a send held while it was recorded
  // (OnSendRecorded) spends it once, when it goes.
  SpendPairToken(st, it.order.request.contact_id, now);
  it.attempt++;
  st.attempts++;
  st.in_flight++;
  st.busy.insert(it.order.request.contact_id);
  st.limiter->OnSent(now);
  it.sent_at = now;
  PushRequest req;
  req.push_id = push_id;
  req.contact_id = it.order.request.contact_id;
  req.op = it.order.request.op;
  req.external_id = it.order.request.external_id;
  req.fields = it.order.request.fields;
  req.channel = it.order.request.channel;
  req.reason = it.order.request.reason;
  req.message_key = it.order.request.message_key;
  // (a re-driven push none of whose attempts was recorded may have gone)
  req.attempt = it.attempt + (it.order.redriven && it.earlier == 0 ? 1 : 0);
  if (st.cfg.daily_credit_budget > 0 && it.credits_reserved > 0)
    req.max_credits = it.credits_reserved;
  req.records = st.records;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.cfg.client->Push(req, st.creds, [me, push_id](PushResult r) {
    caf::anon_send(me, HttpDone{push_id, std::move(r)});
  });
}

// A send to a number (or address) a contact actor has closed the gate to
// (actors/send_gate.h) never goes: it is dead-lettered at once, which
// settles it and has the text reported failed to the system that asked
// (an opt-out whose append is under way refuses it too; a second contact
// of an erased person's number learns it no other way while the opt-out
// registry has not yet folded the erasure). True when withheld.
bool Withheld(Self* self, const std::string& id) {
  auto& st = self->state;
  auto found = st.items.find(id);
  const DomainEvent& req = found->second.order.request;
  if (!st.env->gate || req.op != "send") return false;
  const std::string channel = req.channel.empty() ? "sms" : req.channel;
  for (const char* f : {"phone", "email"}) {
    auto who = req.fields.find(f);
    if (who == req.fields.end() || who->second.empty() ||
        !st.env->gate->Closed(st.cfg.tenant, who->second, channel))
      continue;
    DomainEvent dead = Event(found->second, ev::kPushDeadLettered);
    dead.reason = channel + " opted out: withheld before it went out";
    st.dead++;
    Count(&PushOpCounters::dead_lettered, st, found->second);
    Logger("connectors")
        ->info("event=push_withheld system={} push_id={} reason=\"{} opted out\"", st.cfg.system,
               id, channel);
    Report(self, found->second, {dead});
    Drop(st, found);
    return true;
  }
  return false;
}

namespace {

// Sends the first waiting backfill read when none is in flight, a slot is
// free below the concurrency and the rate limit allows (connector_actor.h).
void SendRead(Self* self, int64_t now) {
  auto& st = self->state;
  if (st.reads.empty() || st.read) return;
  size_t limit = static_cast<size_t>(st.cfg.concurrency);
  bool paused = false;
  if (st.env->control) {
    paused = st.env->control->PausedBy(st.cfg.tenant, st.cfg.system).has_value();
    const int cap = st.env->control->Limit(st.cfg.tenant, st.cfg.system);
    if (cap > 0) limit = std::min(limit, static_cast<size_t>(cap));
  }
  // Opt-outs that may go go first (a pause holds them, not the reads).
  if (st.in_flight >= limit || (!paused && !st.urgent.empty())) return;
  const int64_t allowed = st.limiter->NextAllowed(now, false, st.recording);
  if (allowed > now) {
    WakeAt(self, allowed);
    return;
  }
  st.read = std::move(st.reads.front());
  st.reads.pop_front();
  st.in_flight++;
  st.limiter->OnSent(now);
  caf::actor me = caf::actor_cast<caf::actor>(self);
  auto done = [me](ContactPage p) { caf::anon_send(me, ReadDone{std::move(p)}); };
  if (st.read->lookup) {
    st.cfg.client->LookupByPhone(st.read->phone, st.creds, std::move(done));
  } else {
    st.cfg.client->ListContacts(st.read->cursor, st.read->page_size, st.creds, std::move(done));
  }
}
}  // namespace

// A backfill read came back: a 401 is mended by a refresh once (the read
// goes again after it); anything else is the backfill's to handle.
void OnReadDone(Self* self, ReadDone& d) {
  auto& st = self->state;
  if (!st.read) return;
  const int64_t now = st.env->now_us();
  st.in_flight--;
  for (int extra = 1; extra < d.page.requests; ++extra) st.limiter->OnSent(now);
  if (d.page.http_status == 429) st.limiter->OnThrottled(now, d.page.retry_after_us);
  const bool refused = d.page.auth_rejected || d.page.http_status == 401;
  if (refused && st.cfg.client->UsesOAuth() && st.read_auth_retries < 1) {
    st.read_auth_retries++;
    st.auth_failed = true;
    st.reads.push_front(std::move(*st.read));
    st.read.reset();
    Pump(self);
    return;
  }
  st.read_auth_retries = 0;
  auto answer = std::move(st.read->done);
  st.read.reset();
  (*answer)(std::move(d.page));
  Pump(self);
}

// The grant could not be refreshed: the waiting reads are answered 401
// (their backfill stops: the credentials need an operator).
void RefuseReads(ConnectorState& st, const TokenGrant& g) {
  while (!st.reads.empty()) {
    ContactPage p;
    p.http_status = 401;
    p.auth_rejected = true;
    p.detail =
        "the connector could not refresh its token (HTTP " + std::to_string(g.http_status) + ")";
    auto answer = std::move(st.reads.front().done);
    st.reads.pop_front();
    (*answer)(std::move(p));
  }
  st.read_auth_retries = 0;
}

namespace {

// Holds the log refused (HeldRecorded), written again once due whatever
// keeps the queues waiting (a pause, the breaker, limits, a refresh): a
// restart needs them, and they make no request.
void RewriteHolds(Self* self, int64_t now) {
  auto& st = self->state;
  if (st.holds_unrecorded == 0) return;  // the common case: no scan of the queues
  int64_t next = 0;                      // the first hold to write later
  for (auto* q : {&st.urgent, &st.normal}) {
    for (auto i = q->begin(); i != q->end();) {
      const auto& item = st.items.at(*i);
      if (item.hold_unrecorded && item.hold_retry_at > now)
        next = next == 0 ? item.hold_retry_at : std::min(next, item.hold_retry_at);
      if (!item.hold_unrecorded || item.hold_retry_at > now ||
          st.busy.count(item.order.request.contact_id)) {
        ++i;
        continue;
      }
      const std::string id = *i;
      i = q->erase(i);
      RecordHeld(self, st.items.at(id));
    }
  }
  // (a wake set for the push's own wait may come first and find the hold
  // not yet due: this one comes for it)
  if (next != 0) WakeAt(self, next);
}

// The attempts earlier runs recorded of `push_id` (its push.attempted
// under ReportedEventKey, numbered from 1 without a gap) into *n, found
// with O(log n) lookups; not ok when the log cannot tell now.
Status AttemptsRecorded(const ConnectorState& st, const std::string& push_id, int* n) {
  auto recorded = [&](int attempt, bool* yes) {
    uint64_t seq = 0;
    Status s = st.env->log->LookupIdempotency(
        st.cfg.tenant, kDecisionKeySystem, ReportedEventKey(push_id, attempt, ev::kPushAttempted),
        &seq);
    *yes = s.ok();
    return s.IsNotFound() ? Status::OK() : s;
  };
  int lo = 0, hi = 1;  // lo recorded (or 0), hi not
  for (bool yes = true;; lo = hi, hi *= 2) {
    if (Status s = recorded(hi, &yes); !s.ok()) return s;
    if (!yes || hi >= (1 << 29)) break;
  }
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    bool yes = false;
    if (Status s = recorded(mid, &yes); !s.ok()) return s;
    (yes ? lo : hi) = mid;
  }
  *n = lo;
  return Status::OK();
}

// Re-driven pushes numbered after the attempts earlier runs recorded
// (a number used again made the log drop a later push.attempted as a
// duplicate). Only the unnumbered are looked at: a restart re-drives a
// backlog one order at a time. When the log cannot tell, none is asked
// again before append_retry_us (one lookup then, not one per order and
// pump), and the warning is logged once, until the log tells again.
void NumberRedriven(Self* self, int64_t now) {
  auto& st = self->state;
  if (st.unnumbered.empty()) return;
  if (now < st.number_retry_at) {
    WakeAt(self, st.number_retry_at);  // (an earlier wake may have come first)
    return;
  }
  Status failed;
  for (auto id = st.unnumbered.begin(); id != st.unnumbered.end();) {
    int n = 0;
    failed = AttemptsRecorded(st, *id, &n);
    if (!failed.ok()) break;
    auto& it = st.items.at(*id);
    it.attempt = it.earlier = n;
    it.unnumbered = false;
    id = st.unnumbered.erase(id);
  }
  if (failed.ok()) {
    if (st.numbering_failed)
      Logger("connectors")
          ->info("event=push_attempts_known system={} tenant={}", st.cfg.system, st.cfg.tenant);
    st.numbering_failed = false;
    return;
  }
  if (!st.numbering_failed)
    Logger("connectors")
        ->warn("event=push_attempts_unknown system={} tenant={} pushes={} error=\"{}\"",
               st.cfg.system, st.cfg.tenant, st.unnumbered.size(), LogText(failed.ToString()));
  st.numbering_failed = true;
  st.number_retry_at = now + st.env->append_retry_us;
  WakeAt(self, st.number_retry_at);
}

void PumpQueues(Self* self) {
  auto& st = self->state;
  int64_t now = st.env->now_us();
  RewriteHolds(self, now);
  NumberRedriven(self, now);
  if (st.refreshing) return;
  bool oauth = st.cfg.client->UsesOAuth();
  bool expiring = st.creds.expires_at_us != 0 && st.creds.expires_at_us - st.margin_us <= now;
  if (oauth && (expiring || st.auth_failed) &&
      !(st.urgent.empty() && st.normal.empty() && st.reads.empty())) {
    if (st.refresh_not_before > now) {
      WakeAt(self, st.refresh_not_before);
      return;
    }
    if (st.in_flight == 0) Refresh(self);
    return;
  }
  SendRead(self, now);
  size_t limit = static_cast<size_t>(st.cfg.concurrency);
  if (st.env->control) {
    // An operator's pause holds everything (a resume wakes the connector);
    // a limit lowers the concurrency.
    if (st.env->control->PausedBy(st.cfg.tenant, st.cfg.system)) return;
    const int cap = st.env->control->Limit(st.cfg.tenant, st.cfg.system);
    if (cap > 0) limit = std::min(limit, static_cast<size_t>(cap));
  }
  while (st.in_flight < limit) {
    std::deque<std::string>::iterator pos;
    int64_t earliest = 0;
    auto* q = Pick(st, now, &pos, &earliest);
    if (!q) {
      if (earliest) WakeAt(self, earliest);
      return;
    }
    if (st.cfg.daily_credit_budget > 0) {
      RollCreditDay(st, now);
      if (st.credits_spent >= st.cfg.daily_credit_budget) {
        WakeAt(self, (now / kDayUs + 1) * kDayUs);  // the next UTC day
        return;
      }
    }
    // Urgent pushes (opt-outs, opt-ins, read-backs) probe a spent daily
    // cap hourly; one waiting on its pacing is looked at again when due.
    int64_t allowed = st.limiter->NextAllowed(now, q == &st.urgent, st.recording);
    if (allowed > now) {
      WakeAt(self, earliest ? std::min(allowed, earliest) : allowed);
      return;
    }
    if (!st.breaker->Allow(now)) {
      WakeAt(self, std::max(st.breaker->reopens_at(), now + 1000));
      return;
    }
    std::string id = *pos;
    q->erase(pos);
    if (Withheld(self, id)) {
      st.breaker->OnNeutral();  // it never went: a half-open trial is not spent on it
      continue;
    }
    int64_t until = 0;
    if (!ReserveCredits(st, st.items.at(id), now, &until)) {  // it waits, holding nothing
      q->push_front(id);
      st.breaker->OnNeutral();
      if (until) WakeAt(self, until);
      return;
    }
    Send(self, id);
  }
}
}  // namespace

// Sends what may go now, then publishes the state every handler leaves.
void Pump(Self* self) {
  PumpQueues(self);
  ReleaseRetired(self->state);
  Publish(self);
}

void ReleaseRetired(ConnectorState& st) {
  // Every push, read and refresh a retired client was asked for has
  // answered when nothing at all is outstanding (the current client's
  // included): none of them can call back into a client let go now.
  if (!st.retired.empty() && st.in_flight == 0 && !st.refreshing) st.retired.clear();
}

}  // namespace dfm::connector_steps
