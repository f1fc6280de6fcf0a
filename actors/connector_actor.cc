#include "actors/connector_actor.h"

#include <algorithm>
#include <cstdlib>

#include "sync/consent.h"
#include "sync/contact_model.h"
#include "util/logging.h"

namespace dfm {

namespace {

using Self = caf::stateful_actor<ConnectorState>;

bool IsConsentOp(std::string_view op) { return op == "opt_out" || op == "opt_in" || op == "mark_dnc"; }

std::string CredentialsKey(const ConnectorState& st) {
  return dfm::CredentialsKey(st.cfg.tenant, st.cfg.system);
}

// The daily credit budget (connector_actor.h): consumer state "credits",
// key CredentialsKey, value "<utc day>\n<credits spent that day, with
// those reserved by requests in flight>".
constexpr char kCreditsConsumer[] = "credits";
constexpr int64_t kDayUs = 86400LL * 1000000;

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
Status StoreState(ConnectorState& st, const char* consumer, const std::vector<StateOp>& ops, bool durable) {
  if (!durable) return st.env->log->CommitConsumer(consumer, 0, ops);
  Status s = st.env->log->CommitConsumerDurable(consumer, 0, ops);
  if (s.ok() && st.env->replicate_state) s = st.env->replicate_state(st.cfg.tenant, consumer, ops);
  return s;
}

// Stores the day's spent and reserved credits; `durable`: synced before it
// returns (a reservation, or a charge past one). Only durable writes are
// replicated: a charge never raises the count past its reservation.
Status StoreCredits(ConnectorState& st, bool durable) {
  const std::vector<StateOp> ops = {
      StateOp{CredentialsKey(st),
              std::to_string(st.credits_day) + "\n" + std::to_string(st.credits_spent + st.credits_reserved),
              false}};
  Status s = StoreState(st, kCreditsConsumer, ops, durable);
  if (!s.ok())
    Logger("connectors")->error("event=credits_store_failed system={} error=\"{}\"", st.cfg.system,
                                s.ToString());
  return s;
}

// Reserves what `it` may cost before it goes. False when the budget has no
// room for it now: `*until` is when to look again (0: when an answer in
// flight frees some), or when the reservation could not be made durable.
bool ReserveCredits(ConnectorState& st, ConnectorState::Item& it, int64_t now, int64_t* until) {
  *until = 0;
  if (st.cfg.daily_credit_budget <= 0 || it.credits_reserved > 0) return true;  // none, or held still
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
  const int cost = static_cast<int>(std::min<int64_t>(most, left));  // the client asks only what fits
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
  // reserved: then it is synced as a reservation is.
  StoreCredits(st, /*durable=*/credits > reserved);
}

void Pump(Self* self);

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

void Count(std::atomic<uint64_t> PushOpCounters::*which, ConnectorState& st,
           const ConnectorState::Item& it) {
  if (PushOpCounters* c = Counts(st, it)) (c->*which).fetch_add(1, std::memory_order_relaxed);
}

// A push leaves the connector (ended, or cancelled before it went).
void ChargeCredits(ConnectorState& st, ConnectorState::Item& it, int64_t now, int credits);

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

void Refresh(Self* self) {
  auto& st = self->state;
  st.refreshing = true;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.cfg.client->RefreshToken(st.creds, [me](TokenGrant g) { caf::anon_send(me, TokenDone{std::move(g)}); });
}

// Whether the vendor could carry `it` out twice (VendorClient::MayApplyTwice).
bool MayApplyTwice(const ConnectorState& st, const ConnectorState::Item& it) {
  PushRequest asked;
  asked.op = it.order.request.op;
  asked.fields = it.order.request.fields;
  asked.channel = it.order.request.channel;
  return st.cfg.client->MayApplyTwice(asked);
}

// Gives the push up after its last attempt: the attempt (outcome
// "failed") and the dead letter are reported, and it is no longer held.
void DeadLetter(Self* self, std::map<std::string, ConnectorState::Item>::iterator found,
                DomainEvent attempted, DomainEvent dead) {
  auto& st = self->state;
  attempted.outcome = "failed";
  st.dead++;
  Count(&PushOpCounters::attempts_failed, st, found->second);
  Count(&PushOpCounters::dead_lettered, st, found->second);
  Report(self, found->second, {std::move(attempted), std::move(dead)});
  Drop(st, found);
}

// An opt-out the vendor refused, or whose retries ran out, is never given
// up on (connector_actor.h): it stays open, tried again after the
// backoff's longest wait (at least its base; longer if a 429 asks), and is
// counted as refused until it lands or an opt-in supersedes it.
void KeepOpen(Self* self, ConnectorState::Item& it, DomainEvent attempted, const PushResult& r,
              int64_t now) {
  auto& st = self->state;
  const std::string& id = it.order.request.push_id;
  if (it.refused_since == 0) {
    it.refused_since = now;
    st.opt_outs_refused.insert(now);
    st.refused_people[it.order.request.contact_id]++;
    Logger("connectors")->warn("event=opt_out_refused system={} tenant={} push_id={} status={} detail=\"{}\"",
                               st.cfg.system, st.cfg.tenant, id, r.http_status, LogText(r.detail));
  }
  std::uniform_real_distribution<double> unit(0.5, 1.0);
  int64_t delay = std::max(st.cfg.backoff.base_us,
                           st.cfg.backoff.Delay(st.cfg.backoff.max_attempts + 1, unit(st.rng)));
  if (r.retry_after_us) delay = std::max(delay, *r.retry_after_us);
  it.not_before = now + delay;
  attempted.outcome = "refused";
  attempted.next_attempt_us = it.not_before;
  Count(&PushOpCounters::attempts_failed, st, it);
  st.urgent.push_front(id);
  Report(self, it, {std::move(attempted)});
  WakeAt(self, it.not_before);
}

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
      dead.reason = "superseded by a later " + next.op + " (" + next.push_id + ") before " +
                    st.cfg.system + " took it";
      st.cancelled++;
      Count(&PushOpCounters::cancelled, st, found->second);
      Report(self, found->second, {std::move(dead)});
      Drop(st, found);
    }
  }
}

// A push the vendor could carry out twice (MayApplyTwice) goes only once
// its push.sending is durable in the contact's stream: counted in flight
// meanwhile, answered by SendRecorded (OnSendRecorded). True when that
// append was started, so the request waits.
bool RecordSending(Self* self, const std::string& push_id) {
  auto& st = self->state;
  auto& it = st.items.at(push_id);
  if (it.sending_recorded || !MayApplyTwice(st, it)) return false;
  st.in_flight++;
  st.busy.insert(it.order.request.contact_id);
  DomainEvent e = Event(it, ev::kPushSending);
  e.attempt = it.attempt + 1;
  EventDraft d = ToDraft(e, st.cfg.tenant, ContactStream(it.order.request.contact_id),
                         it.order.request_id, it.order.correlation_id);
  d.idempotency_system = kDecisionKeySystem;
  d.idempotency_key = "r/" + push_id + "/sending";
  std::vector<EventDraft> drafts;
  drafts.push_back(std::move(d));
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.env->log->AppendAsync(std::move(drafts), [me, push_id](const Status& s,
                                                            const std::vector<AppendOutcome>& o) {
    caf::anon_send(me, SendRecorded{push_id, s.ok() ? "" : s.ToString(),
                                    s.ok() && !o.empty() && o[0].duplicate});
  });
  return true;
}

void Send(Self* self, const std::string& push_id) {
  auto& st = self->state;
  if (RecordSending(self, push_id)) return;
  auto& it = st.items.at(push_id);
  int64_t now = st.env->now_us();
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
  req.attempt = it.attempt + (it.order.redriven ? 1 : 0);
  if (st.cfg.daily_credit_budget > 0 && it.credits_reserved > 0) req.max_credits = it.credits_reserved;
  req.records = st.records;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.cfg.client->Push(req, st.creds, [me, push_id](PushResult r) {
    caf::anon_send(me, HttpDone{push_id, std::move(r)});
  });
}

// Per-contact pacing: refills `contact`'s bucket to `now`; when it may send
// next (now when a token is left).
int64_t PairReadyAt(ConnectorState& st, const std::string& contact, int64_t now) {
  if (st.cfg.pair_burst <= 0 || st.cfg.pair_interval_us <= 0) return now;
  auto it = st.pairs.find(contact);
  if (it == st.pairs.end()) return now;
  auto& p = it->second;
  p.tokens = std::min<double>(st.cfg.pair_burst,
                              p.tokens + static_cast<double>(now - p.at_us) / st.cfg.pair_interval_us);
  p.at_us = now;
  if (p.tokens >= 1) return now;
  return now + static_cast<int64_t>((1 - p.tokens) * st.cfg.pair_interval_us) + 1;
}

void SpendPairToken(ConnectorState& st, const std::string& contact, int64_t now) {
  if (st.cfg.pair_burst <= 0 || st.cfg.pair_interval_us <= 0) return;
  auto [it, fresh] = st.pairs.try_emplace(contact, ConnectorState::Pair{double(st.cfg.pair_burst), now});
  (void)fresh;
  it->second.tokens -= 1;
  // Full buckets are forgotten, so the map holds only people paced now.
  if (st.pairs.size() > 4096 && (st.pairs.size() & 1023) == 0) {
    for (auto p = st.pairs.begin(); p != st.pairs.end();) {
      double t = p->second.tokens + static_cast<double>(now - p->second.at_us) / st.cfg.pair_interval_us;
      p = t >= st.cfg.pair_burst ? st.pairs.erase(p) : std::next(p);
    }
  }
}

// The next push that may go now: first in order, opt-outs first, never a
// second one for a contact, never one waiting out its backoff, never one
// behind a waiting push of the same contact.
std::deque<std::string>* Pick(ConnectorState& st, int64_t now, std::deque<std::string>::iterator* pos,
                              int64_t* earliest) {
  std::set<std::string> blocked;  // across both queues: an opt-out waiting holds back the rest
  std::set<std::string> consent_blocked;  // behind an open refused opt-out: consent pushes only
  for (auto* q : {&st.urgent, &st.normal}) {
    for (auto i = q->begin(); i != q->end(); ++i) {
      const auto& item = st.items.at(*i);
      const std::string& contact = item.order.request.contact_id;
      if (st.busy.count(contact) || blocked.count(contact)) continue;
      if (IsConsentOp(item.order.request.op) && consent_blocked.count(contact)) continue;
      const int64_t paced = PairReadyAt(st, contact, now);
      const int64_t not_before = std::max(item.not_before, paced);
      if (not_before > now) {
        (item.refused_since != 0 ? consent_blocked : blocked).insert(contact);
        if (*earliest == 0 || not_before < *earliest) *earliest = not_before;
        continue;
      }
      *pos = i;
      return q;
    }
  }
  return nullptr;
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
    Logger("connectors")->info("event=push_withheld system={} push_id={} reason=\"{} opted out\"",
                               st.cfg.system, id, channel);
    Report(self, found->second, {dead});
    Drop(st, found);
    return true;
  }
  return false;
}

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
  const int64_t allowed = st.limiter->NextAllowed(now);
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

// A backfill read came back: a 401 is mended by a refresh once (the read
// goes again after it); anything else is the backfill's to handle.
void OnReadDone(Self* self, ReadDone& d) {
  auto& st = self->state;
  if (!st.read) return;
  const int64_t now = st.env->now_us();
  st.in_flight--;
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
    p.detail = "the connector could not refresh its token (HTTP " + std::to_string(g.http_status) + ")";
    auto answer = std::move(st.reads.front().done);
    st.reads.pop_front();
    (*answer)(std::move(p));
  }
  st.read_auth_retries = 0;
}

void PumpQueues(Self* self) {
  auto& st = self->state;
  if (st.refreshing) return;
  int64_t now = st.env->now_us();
  bool oauth = st.cfg.client->UsesOAuth();
  bool expiring = st.creds.expires_at_us != 0 && st.creds.expires_at_us - st.margin_us <= now;
  if (oauth && (expiring || st.auth_failed) && !(st.urgent.empty() && st.normal.empty() && st.reads.empty())) {
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
    int64_t allowed = st.limiter->NextAllowed(now);
    if (allowed > now) {
      WakeAt(self, allowed);
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
    SpendPairToken(st, st.items.at(id).order.request.contact_id, now);
    Send(self, id);
  }
}

// Sends what may go now, then publishes the state every handler leaves.
void Pump(Self* self) {
  PumpQueues(self);
  Publish(self);
}

// A push the contact settled (PushCancel) while it was in flight failed:
// it ends here, not tried again.
void EndCancelled(Self* self, std::map<std::string, ConnectorState::Item>::iterator found,
                  DomainEvent attempted) {
  auto& st = self->state;
  st.breaker->OnNeutral();
  attempted.outcome = "failed";
  st.cancelled++;
  Count(&PushOpCounters::attempts_failed, st, found->second);
  Count(&PushOpCounters::cancelled, st, found->second);
  Report(self, found->second, {std::move(attempted)});
  Drop(st, found);
}

// The vendor took the push: push.attempted "ok" and push.succeeded, with
// what it answered (an answer op's fields; answer.<key> for the others).
void Succeed(Self* self, std::map<std::string, ConnectorState::Item>::iterator found,
             DomainEvent attempted, const PushResult& r, int64_t now) {
  auto& st = self->state;
  auto& it = found->second;
  st.breaker->OnSuccess();
  st.auth_failed = false;
  attempted.outcome = "ok";
  DomainEvent ok = Event(it, ev::kPushSucceeded);
  // A message op's external id is the message's id in the target (the
  // vendor's answer), never the contact's.
  ok.external_id = r.external_id.empty() && !IsMessageOp(it.order.request.op)
                       ? it.order.request.external_id
                       : r.external_id;
  ok.fields = it.order.request.fields;
  if (IsAnswerOp(it.order.request.op)) {
    // What it answered, and what was asked (asked.<field>) but a text:
    // the contact records both (contact.enriched, consent.classified).
    ok.fields = r.answered;
    for (const auto& [f, v] : it.order.request.fields)
      if (f != "body") ok.fields["asked." + f] = v;
    ok.detail = r.detail;
  } else {
    // What else the vendor answered that a projection keeps (Genesys's
    // conversation id: the conversation mapping), as answer.<key>.
    for (const auto& [k, v] : r.answered) ok.fields["answer." + k] = v;
  }
  ok.http_status = r.http_status;
  st.succeeded++;
  Count(&PushOpCounters::attempts_ok, st, it);
  Count(&PushOpCounters::succeeded, st, it);
  if (ConnectorStatus* b = st.cfg.status.get()) {
    b->last_success_us.store(now, std::memory_order_relaxed);
    if (it.opt_out_since != 0) b->opt_out_propagation.Observe(std::max<int64_t>(now - it.opt_out_since, 0));
  }
  Report(self, it, {attempted, ok});
  Drop(st, found);
}

void OnDone(Self* self, HttpDone& d) {
  auto& st = self->state;
  auto found = st.items.find(d.push_id);
  if (found == st.items.end()) return;
  auto& it = found->second;
  const PushResult& r = d.result;
  int64_t now = st.env->now_us();
  st.in_flight--;
  st.busy.erase(it.order.request.contact_id);
  if (r.http_status != 0) st.last_answer_401 = r.auth_rejected;
  for (int i = 1; i < r.requests; ++i) st.limiter->OnSent(now);
  // A request that may have been done unanswered cost all it reserved.
  const bool unanswered = r.http_status == 0 && !r.not_sent;
  ChargeCredits(st, it, now, unanswered ? std::max(r.credits, it.credits_reserved) : r.credits);
  st.limiter->OnHeaders(now, r.rate_remaining, r.daily_remaining);
  if (ConnectorStatus* b = st.cfg.status.get())
    b->last_answer_us.store(std::max<int64_t>(now - it.sent_at, 0), std::memory_order_relaxed);

  DomainEvent attempted = Event(it, ev::kPushAttempted);
  attempted.http_status = r.http_status;
  attempted.detail = r.detail;
  bool urgent = it.order.request.priority > 0;
  auto requeue = [&] { (urgent ? st.urgent : st.normal).push_front(d.push_id); };

  if (r.auth_rejected && st.cfg.client->UsesOAuth() && it.auth_retries < 2) {
    // The token was refused (also by pushes in flight with it): refresh, then
    // try again, at most twice per push so a token the vendor keeps refusing
    // ends in a dead letter instead of spending refresh tokens forever.
    it.auth_retries++;
    it.attempt--;  // not counted against max_attempts
    st.auth_failed = true;
    attempted.outcome = "retry";
    Count(&PushOpCounters::attempts_retry, st, it);
    attempted.next_attempt_us = now;
    it.not_before = now;
    requeue();
    Report(self, it, {attempted});
    Pump(self);
    return;
  }
  if (r.http_status == 0 && !r.not_sent && it.attempt < st.cfg.backoff.max_attempts) {
    // No answer: the vendor may have done it. Not again if a repeat could
    // do it twice (VendorClient::MayApplyTwice).
    if (MayApplyTwice(st, it)) {
      st.breaker->OnFailure(now);  // no answer: as any transport failure (a half-open trial ends)
      DomainEvent dead = Event(it, ev::kPushDeadLettered);
      dead.reason = "no answer (" + r.detail + "): not tried again, since " + st.cfg.system +
                    " may have done it and a repeat could do it twice";
      DeadLetter(self, found, std::move(attempted), std::move(dead));
      Pump(self);
      return;
    }
  }
  switch (r.recipient_opted_out || r.permanent ? AttemptOutcome::kFail
                                 : ClassifyAttempt(r.transient ? 503 : r.http_status)) {
    case AttemptOutcome::kOk:
      Succeed(self, found, std::move(attempted), r, now);
      break;
    case AttemptOutcome::kRetry: {
      if (it.cancelled) {  // settled by the contact (message.refused): not tried again
        EndCancelled(self, found, std::move(attempted));
        break;
      }
      if (r.http_status == 429) {
        st.limiter->OnThrottled(now, r.retry_after_us);
        st.breaker->OnNeutral();
      } else if (!r.transient) {
        st.breaker->OnFailure(now);
      } else {  // the vendor answered: a known passing refusal is no outage
        st.breaker->OnNeutral();
      }
      if (it.attempt >= st.cfg.backoff.max_attempts && IsOptOutPush(it.order.request.op)) {
        KeepOpen(self, it, std::move(attempted), r, now);
        break;
      }
      if (it.attempt >= st.cfg.backoff.max_attempts) {
        DomainEvent dead = Event(it, ev::kPushDeadLettered);
        dead.http_status = r.http_status;
        dead.reason = "retries exhausted after " + std::to_string(it.attempt) + " attempts: " + r.detail;
        DeadLetter(self, found, std::move(attempted), std::move(dead));
        break;
      }
      std::uniform_real_distribution<double> unit(0.0, 1.0);
      int64_t delay = st.cfg.backoff.Delay(it.attempt, unit(st.rng));
      if (r.retry_after_us) delay = std::max(delay, *r.retry_after_us);
      it.not_before = now + delay;
      attempted.outcome = "retry";
      Count(&PushOpCounters::attempts_retry, st, it);
      attempted.next_attempt_us = it.not_before;
      requeue();
      Report(self, it, {attempted});
      WakeAt(self, it.not_before);
      break;
    }
    case AttemptOutcome::kFail: {
      st.breaker->OnSuccess();  // the vendor answered: it is up, the request was wrong
      if (IsOptOutPush(it.order.request.op) && !r.recipient_opted_out) {
        KeepOpen(self, it, std::move(attempted), r, now);
        break;
      }
      DomainEvent dead = Event(it, ev::kPushDeadLettered);
      dead.http_status = r.http_status;
      dead.reason = r.detail.empty() ? "HTTP " + std::to_string(r.http_status) : r.detail;
      if (r.recipient_opted_out) dead.outcome = kRecipientOptedOut;  // a consent statement
      DeadLetter(self, found, std::move(attempted), std::move(dead));
      break;
    }
  }
  Pump(self);
}

void OnSendRecorded(Self* self, const SendRecorded& r) {
  auto& st = self->state;
  auto found = st.items.find(r.push_id);
  if (found == st.items.end()) return;
  auto& it = found->second;
  st.in_flight--;
  st.busy.erase(it.order.request.contact_id);
  // Unless it goes now, it never went: a half-open trial is not spent on it.
  if (it.cancelled || !r.error.empty() || r.duplicate) st.breaker->OnNeutral();
  if (it.cancelled) {  // an opt-out came meanwhile: it never went
    st.cancelled++;
    Count(&PushOpCounters::cancelled, st, it);
    Drop(st, found);
  } else if (!r.error.empty()) {
    // Not recorded, not sent: tried again once the log may write.
    Logger("connectors")->warn("event=push_sending_unrecorded system={} push_id={} error=\"{}\"",
                               st.cfg.system, r.push_id, LogText(r.error));
    it.not_before = st.env->now_us() + st.env->append_retry_us;
    (it.order.request.priority > 0 ? st.urgent : st.normal).push_front(r.push_id);
  } else if (r.duplicate) {
    // An earlier run recorded it and stopped before its outcome: the
    // vendor may have done it. Not again (as after no answer, OnDone).
    ++it.attempt;
    DomainEvent attempted = Event(it, ev::kPushAttempted);
    attempted.detail = "begun before a restart, outcome unknown";
    DomainEvent dead = Event(it, ev::kPushDeadLettered);
    dead.reason = "begun before a restart, outcome unknown: not tried again, since " +
                  st.cfg.system + " may have done it and a repeat could do it twice";
    DeadLetter(self, found, std::move(attempted), std::move(dead));
  } else {
    it.sending_recorded = true;
    if (Withheld(self, r.push_id)) {  // the gate closed meanwhile
      st.breaker->OnNeutral();
    } else {
      Send(self, r.push_id);
    }
  }
  Pump(self);
}

}  // namespace

caf::behavior ConnectorActor(Self* self, std::shared_ptr<const SyncEnv> env, caf::actor router,
                             ConnectorSettings cfg) {
  auto& st = self->state;
  st.env = std::move(env);
  st.router = std::move(router);
  st.cfg = std::move(cfg);
  st.limiter = std::make_unique<RateLimiter>(st.cfg.rate_limit, st.cfg.rate_window_us, st.cfg.daily_limit);
  st.breaker = std::make_unique<CircuitBreaker>(st.cfg.breaker_threshold, st.cfg.breaker_open_us);
  st.rng.seed(st.cfg.seed ? st.cfg.seed : static_cast<uint64_t>(st.env->now_us()));
  st.creds = st.cfg.credentials;
  st.margin_us = st.cfg.refresh_margin_us;
  if (st.env->vendor_records)
    st.records = std::make_shared<VendorRecords>(st.env->vendor_records, st.cfg.tenant + "/" + st.cfg.system,
                                                 st.env->now_us);
  std::string stored;
  Credentials c;
  if (st.env->log->GetConsumerState(kCredentialsConsumer, CredentialsKey(st), &stored).ok() &&
      DecodeCredentials(stored, &c)) {
    st.creds = c;  // a grant obtained by an earlier run: the configured one may be spent
  }
  if (st.env->log->GetConsumerState(kCreditsConsumer, CredentialsKey(st), &stored).ok()) {
    const size_t nl = stored.find('\n');
    if (nl != std::string::npos) {
      st.credits_day = std::strtoll(stored.c_str(), nullptr, 10);
      st.credits_spent = std::strtoll(stored.c_str() + nl + 1, nullptr, 10);
    }
  }
  return {
      [self](PushOrder& o) {
        auto& state = self->state;
        std::string id = o.request.push_id;  // copied: `o` is moved below
        if (state.items.count(id)) return;
        bool urgent = o.request.priority > 0;
        int64_t since = 0;
        if (IsOptOutPush(o.request.op)) {
          since = o.correlation_id.IsZero() ? state.env->now_us()
                                            : o.correlation_id.TimestampMillis() * 1000;
          state.opt_outs_held.insert(since);
        }
        if (o.request.op == "opt_in" || o.request.op == "opt_out") Supersede(self, o.request);
        ConnectorState::Item item{std::move(o), 0, 0, 0};
        item.opt_out_since = since;
        state.items[id] = std::move(item);
        (urgent ? state.urgent : state.normal).push_back(id);
        Pump(self);
      },
      [self](PushCancel& cancel) {
        auto& state = self->state;
        auto found = state.items.find(cancel.push_id);
        if (found == state.items.end()) return;
        for (auto* q : {&state.urgent, &state.normal}) {
          auto pos = std::find(q->begin(), q->end(), cancel.push_id);
          if (pos == q->end()) continue;
          q->erase(pos);  // waiting: it never goes
          state.cancelled++;
          Count(&PushOpCounters::cancelled, state, found->second);
          Drop(state, found);
          Logger("connectors")->info("event=push_cancelled system={} push_id={} reason=\"{}\"",
                                     state.cfg.system, cancel.push_id, LogText(cancel.reason));
          Pump(self);
          return;
        }
        found->second.cancelled = true;  // in flight: no retry if it fails
      },
      [self](HttpDone& d) { OnDone(self, d); },
      [self](SendRecorded& r) { OnSendRecorded(self, r); },
      [self](BackfillRead& r) {
        self->state.reads.push_back(std::move(r));
        Pump(self);
      },
      [self](ReadDone& d) { OnReadDone(self, d); },
      [self](TokenDone& t) {
        auto& state = self->state;
        state.refreshing = false;
        int64_t now = state.env->now_us();
        if (t.grant.ok) {
          Credentials fresh;
          fresh.access_token = t.grant.access_token;
          fresh.refresh_token = t.grant.refresh_token;
          fresh.expires_at_us = now + t.grant.expires_in_s * 1000000;
          // Synced before use: the old refresh token is spent. When storing
          // fails the grant is still used (it is the only valid one left),
          // and a restart would need the operator to grant again.
          Status s = StoreState(state, kCredentialsConsumer,
                                {StateOp{CredentialsKey(state), EncodeCredentials(fresh), false}}, true);
          if (!s.ok()) {
            Logger("connectors")->error("event=token_store_failed system={} error=\"{}\"", state.cfg.system,
                                        s.ToString());
          }
          state.creds = fresh;
          // A grant shorter-lived than the margin is refreshed at half its
          // life, not at once again (which would refresh for ever).
          state.margin_us = std::min(state.cfg.refresh_margin_us, t.grant.expires_in_s * 1000000 / 2);
          state.auth_failed = false;
          state.refresh_failed = false;
          Logger("connectors")->info("event=token_refreshed system={} tenant={} expires_in_s={}",
                                     state.cfg.system, state.cfg.tenant, t.grant.expires_in_s);
        } else {
          state.refresh_not_before = now + state.cfg.refresh_retry_us;
          state.refresh_failed = true;
          // The grant refused for good (invalid_grant): a backfill cannot go
          // on without an operator. Anything else (5xx, no answer) is tried
          // again after refresh_retry_us with the reads still waiting.
          if (t.grant.http_status == 400 || t.grant.http_status == 401) RefuseReads(state, t.grant);
          Logger("connectors")->error("event=token_refresh_failed system={} tenant={} status={} detail=\"{}\"",
                                      state.cfg.system, state.cfg.tenant, t.grant.http_status,
                                      LogText(t.grant.detail));
        }
        Pump(self);
      },
      [self](ConnectorUpdate& u) {
        auto& state = self->state;
        ConnectorSettings next = std::move(*u.settings);
        next.status = state.cfg.status;  // the board keeps its entry
        state.retired.push_back(state.cfg.client);
        const bool new_credentials =
            next.credentials.access_token != state.cfg.credentials.access_token ||
            next.credentials.refresh_token != state.cfg.credentials.refresh_token ||
            next.client->UsesOAuth();
        state.cfg = std::move(next);
        if (new_credentials) {
          state.creds = state.cfg.credentials;  // an OAuth vendor: a grant for the new client
          state.auth_failed = false;
          state.read_auth_retries = 0;
          state.refresh_failed = false;
          state.refresh_not_before = 0;
        }
        state.limiter = std::make_unique<RateLimiter>(state.cfg.rate_limit, state.cfg.rate_window_us,
                                                      state.cfg.daily_limit);
        state.breaker = std::make_unique<CircuitBreaker>(state.cfg.breaker_threshold,
                                                         state.cfg.breaker_open_us);
        state.pairs.clear();
        Logger("connectors")->info("event=connector_reloaded system={} tenant={} held={}",
                                   state.cfg.system, state.cfg.tenant, state.items.size());
        Pump(self);
      },
      [self](caf::actor& r) { self->state.router = std::move(r); },
      [self](wake_atom) {
        self->state.wake_at = 0;
        Pump(self);
      },
  };
}

}  // namespace dfm
