#include <algorithm>

#include "actors/connector_steps.h"
#include "sync/consent.h"
#include "sync/contact_model.h"
#include "util/logging.h"

namespace dfm::connector_steps {

// Hourly probes of a spent daily cap not counted against max_attempts:
// two days' worth.
constexpr int kFreeDailyTries = 48;

// Whether the vendor could carry `it` out twice (VendorClient::MayApplyTwice).
bool MayApplyTwice(const ConnectorState& st, const ConnectorState::Item& it) {
  PushRequest asked;
  asked.op = it.order.request.op;
  asked.fields = it.order.request.fields;
  asked.channel = it.order.request.channel;
  return st.cfg.client->MayApplyTwice(asked);
}

namespace {

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

// An opt_in or opt_out of `it`'s person that came while `it` (an opt-out
// refused just now) was on its way, and waits behind it: Supersede did not
// see `it` refused when it came, so it settles it now, as it would have
// then. Without it the later push waited behind the open opt-out for ever
// (a consent push never passes one).
void SupersedeByLaterConsent(Self* self, const ConnectorState::Item& it) {
  auto& st = self->state;
  const std::string refused = it.order.request.push_id, contact = it.order.request.contact_id;
  std::vector<DomainEvent> later;  // copies: Supersede drops items as it goes
  for (auto* q : {&st.urgent, &st.normal}) {
    for (const std::string& id : *q) {
      const ConnectorState::Item& other = st.items.at(id);
      const DomainEvent& req = other.order.request;
      if (id != refused && other.refused_since == 0 && req.contact_id == contact &&
          (req.op == "opt_in" || req.op == "opt_out"))
        later.push_back(req);
    }
  }
  for (const DomainEvent& next : later) {
    if (!st.items.count(refused)) return;
    Supersede(self, next);
  }
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
    Logger("connectors")
        ->warn("event=opt_out_refused system={} tenant={} push_id={} status={} detail=\"{}\"",
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
  const int64_t wake = it.not_before;
  SupersedeByLaterConsent(self, it);  // may drop `it`
  WakeAt(self, wake);
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
    if (it.opt_out_since != 0)
      b->opt_out_propagation.Observe(std::max<int64_t>(now - it.opt_out_since, 0));
  }
  Report(self, it, {attempted, ok});
  Drop(st, found);
}

// Puts `it` back at the head of its queue, to go again after not_before.
void Requeue(ConnectorState& st, const ConnectorState::Item& it) {
  (Urgent(it.order.request) ? st.urgent : st.normal).push_front(it.order.request.push_id);
}

// What any answer (or none) settles: the slot, the contact, the limits and
// the credits the request reserved.
void Settle(ConnectorState& st, ConnectorState::Item& it, const PushResult& r, int64_t now) {
  st.in_flight--;
  st.busy.erase(it.order.request.contact_id);
  if (r.http_status != 0) st.last_answer_401 = r.auth_rejected;
  for (int i = 1; i < r.requests; ++i) st.limiter->OnSent(now);
  // A request that may have been done unanswered cost all it reserved.
  const bool unanswered = r.http_status == 0 && !r.not_sent;
  ChargeCredits(st, it, now, unanswered ? std::max(r.credits, it.credits_reserved) : r.credits);
  st.limiter->OnHeaders(now, r.rate_remaining, r.daily_remaining, it.sent_at);
  if (ConnectorStatus* b = st.cfg.status.get())
    b->last_answer_us.store(std::max<int64_t>(now - it.sent_at, 0), std::memory_order_relaxed);
}

// Whether answer `r` says its request was not carried out: it never left
// (not_sent), the token was refused, the request was refused to slow
// down (429) or in a way known to pass (transient), or the vendor said so
// in its own words (PushResult::not_done). Not an unanswered request, nor
// a bare 5xx (a gateway's 502, 503 or 504 may hide a vendor that took it).
bool SaysNotDone(const PushResult& r) {
  return r.not_sent || r.auth_rejected || r.transient || r.http_status == 429 || r.not_done;
}

// `it`, answered `r` (`why`), waits to go again. A push recorded before its
// request (MayApplyTwice) whose every request under this generation was
// answered "not done" (SaysNotDone) gives the generation up first: a
// restart during the wait then finds it held and sends it once, instead
// of taking it for a request that may have gone. One that may have gone
// keeps its generation, so a restart does not send it again.
void WaitToGoAgain(Self* self, ConnectorState::Item& it, const PushResult& r,
                   const std::string& why) {
  if (it.sending_recorded && !SaysNotDone(r)) it.may_have_gone = true;
  if (it.sending_recorded && !it.may_have_gone) {
    GiveUpGeneration(self, it, why + ": to be tried again");
    return;
  }
  Requeue(self->state, it);
}

// The token was refused (also by pushes in flight with it): refresh, then
// try again, at most twice per push so a token the vendor keeps refusing
// ends in a dead letter instead of spending refresh tokens forever. True
// when that is what the answer does. A refused token says nothing of an
// outage: a half-open breaker's trial is over.
bool RetryAfterRefresh(Self* self, ConnectorState::Item& it, DomainEvent& attempted,
                       const PushResult& r, int64_t now) {
  auto& st = self->state;
  if (!r.auth_rejected || !st.cfg.client->UsesOAuth() || it.auth_retries >= 2) return false;
  st.breaker->OnNeutral();
  it.auth_retries++;
  it.free_tries++;  // not counted against max_attempts
  st.auth_failed = true;
  attempted.outcome = "retry";
  Count(&PushOpCounters::attempts_retry, st, it);
  attempted.next_attempt_us = now;
  it.not_before = now;
  WaitToGoAgain(self, it, r, "token refused (HTTP " + std::to_string(r.http_status) + ")");
  Report(self, it, {attempted});
  return true;
}

// No answer: the vendor may have done it. Not again if a repeat could do
// it twice (VendorClient::MayApplyTwice): dead-lettered, and true.
bool GiveUpUnanswered(Self* self, Held found, DomainEvent& attempted, const PushResult& r,
                      int64_t now) {
  auto& st = self->state;
  auto& it = found->second;
  if (r.http_status != 0 || r.not_sent || it.counted() >= st.cfg.backoff.max_attempts ||
      !MayApplyTwice(st, it))
    return false;
  st.breaker->OnFailure(now);  // no answer: as any transport failure (a half-open trial ends)
  DomainEvent dead = Event(it, ev::kPushDeadLettered);
  dead.reason = "no answer (" + r.detail + "): not tried again, since " + st.cfg.system +
                " may have done it and a repeat could do it twice";
  DeadLetter(self, found, std::move(attempted), std::move(dead));
  return true;
}

// Why a passing failure's request was not done, for its push.held.
std::string NotDone(const PushResult& r) {
  if (r.not_sent) return "not sent (" + r.detail + ")";
  if (r.http_status == 429) return "rate limited (HTTP 429)";
  return "answered HTTP " + std::to_string(r.http_status) + " (not done)";
}

// A passing failure (no answer, 5xx, 408, 429): tried again after the
// backoff, unless settled meanwhile or out of attempts (an opt-out then
// stays open).
void RetryLater(Self* self, Held found, DomainEvent attempted, const PushResult& r, int64_t now) {
  auto& st = self->state;
  auto& it = found->second;
  if (it.cancelled) {  // settled by the contact (message.refused): not tried again
    EndCancelled(self, found, std::move(attempted));
    return;
  }
  if (r.http_status == 429) {
    // The day's cap answering an hourly probe (RateLimiter::NextAllowed)
    // spends no attempt: an opt-out is not "refused" for it, nor anything
    // dead-lettered, while the vendor's day has not turned; for two days
    // at most (a vendor that never lets anything through again shows).
    if (st.limiter->DailyCapReached(now) && it.free_tries < kFreeDailyTries) it.free_tries++;
    st.limiter->OnThrottled(now, r.retry_after_us);
    st.breaker->OnNeutral();
  } else if (!r.transient) {
    st.breaker->OnFailure(now);
  } else {  // the vendor answered: a known passing refusal is no outage
    st.breaker->OnNeutral();
  }
  if (it.counted() >= st.cfg.backoff.max_attempts && IsOptOutPush(it.order.request.op)) {
    KeepOpen(self, it, std::move(attempted), r, now);
    return;
  }
  if (it.counted() >= st.cfg.backoff.max_attempts) {
    DomainEvent dead = Event(it, ev::kPushDeadLettered);
    dead.http_status = r.http_status;
    dead.reason =
        "retries exhausted after " + std::to_string(it.attempt) + " attempts: " + r.detail;
    DeadLetter(self, found, std::move(attempted), std::move(dead));
    return;
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int64_t delay = st.cfg.backoff.Delay(it.counted(), unit(st.rng));
  if (r.retry_after_us) delay = std::max(delay, *r.retry_after_us);
  it.not_before = now + delay;
  attempted.outcome = "retry";
  Count(&PushOpCounters::attempts_retry, st, it);
  attempted.next_attempt_us = it.not_before;
  WaitToGoAgain(self, it, r, NotDone(r));
  Report(self, it, {attempted});
  WakeAt(self, it.not_before);
}

// The vendor refused the request for good: dead-lettered, unless it is an
// opt-out (kept open) other than a "recipient opted out".
void Refused(Self* self, Held found, DomainEvent attempted, const PushResult& r, int64_t now) {
  auto& st = self->state;
  auto& it = found->second;
  if (it.cancelled && !r.recipient_opted_out) {
    // Withdrawn while out (an opt-out came, a campaign was cancelled), and
    // refused: it ends cancelled, not dead-lettered (which would report it
    // failed to GoHighLevel over its refusal). A "recipient opted out" is a
    // consent statement: dead-lettered below as ever.
    EndCancelled(self, found, std::move(attempted));
    return;
  }
  st.breaker->OnSuccess();  // the vendor answered: it is up, the request was wrong
  if (IsOptOutPush(it.order.request.op) && !r.recipient_opted_out) {
    KeepOpen(self, it, std::move(attempted), r, now);
    return;
  }
  DomainEvent dead = Event(it, ev::kPushDeadLettered);
  dead.http_status = r.http_status;
  dead.reason = r.detail.empty() ? "HTTP " + std::to_string(r.http_status) : r.detail;
  if (r.recipient_opted_out) dead.outcome = kRecipientOptedOut;  // a consent statement
  DeadLetter(self, found, std::move(attempted), std::move(dead));
}

// True when what PumpQueues checked before a push was recorded no longer
// lets it go: an operator's pause, or a breaker opened by another answer.
bool HeldSince(ConnectorState& st) {
  if (st.env->control && st.env->control->PausedBy(st.cfg.tenant, st.cfg.system)) return true;
  return st.breaker->state(st.env->now_us()) == CircuitBreaker::State::kOpen;
}

// The answer to RecordHeld: written, the push waits in its queue for the
// resume (or the breaker), its next generation to be recorded; not
// written, it waits in its queue, not to go, until RewriteHolds writes it
// again (append_retry_us later, paused or not).
void HeldRecorded(Self* self, Held found, const SendRecorded& r) {
  auto& st = self->state;
  auto& it = found->second;
  if (it.cancelled) {  // an opt-out came meanwhile: it never went
    st.cancelled++;
    Count(&PushOpCounters::cancelled, st, it);
    Drop(st, found);
    return;
  }
  if (r.error.empty()) {
    it.hold_unrecorded = false;
    st.holds_unrecorded--;
  } else {
    Logger("connectors")
        ->warn("event=push_held_unrecorded system={} push_id={} error=\"{}\"", st.cfg.system,
               r.push_id, LogText(r.error));
    // (not_before, a backoff or a Retry-After, stays: the hold is written
    // again meanwhile, and the push goes only after both)
    it.hold_retry_at = st.env->now_us() + st.env->append_retry_us;
    WakeAt(self, it.hold_retry_at);  // RewriteHolds, paused or not
  }
  Requeue(st, it);
}

// Its push.sending of this generation was written by an earlier run. Held
// then (push.held): it never went, and goes under the next generation.
// Else the earlier run may have sent it, unanswered: not again (as after
// no answer, OnDone). The log not telling: asked again later.
void FoundRecorded(Self* self, Held found) {
  auto& st = self->state;
  auto& it = found->second;
  uint64_t seq = 0;
  const Status held = st.env->log->LookupIdempotency(
      st.cfg.tenant, kDecisionKeySystem, HeldKey(it.order.request.push_id, it.generation), &seq);
  if (held.ok()) {
    ++it.generation;
    Requeue(st, it);
    return;
  }
  if (!held.IsNotFound()) {
    it.not_before = st.env->now_us() + st.env->append_retry_us;
    Requeue(st, it);
    WakeAt(self, it.not_before);
    return;
  }
  ++it.attempt;
  DomainEvent attempted = Event(it, ev::kPushAttempted);
  attempted.detail = "begun before a restart, outcome unknown";
  DomainEvent dead = Event(it, ev::kPushDeadLettered);
  dead.reason = "begun before a restart, outcome unknown: not tried again, since " + st.cfg.system +
                " may have done it and a repeat could do it twice";
  DeadLetter(self, found, std::move(attempted), std::move(dead));
}

}  // namespace

void OnDone(Self* self, HttpDone& d) {
  auto& st = self->state;
  auto found = st.items.find(d.push_id);
  if (found == st.items.end()) return;
  auto& it = found->second;
  const PushResult& r = d.result;
  const int64_t now = st.env->now_us();
  Settle(st, it, r, now);
  DomainEvent attempted = Event(it, ev::kPushAttempted);
  attempted.http_status = r.http_status;
  attempted.detail = r.detail;
  if (it.cancelled && r.auth_rejected && st.cfg.client->UsesOAuth()) {
    // Withdrawn while out, refused for its token: it ends cancelled (not
    // sent again after the refresh, not dead-lettered); the grant is
    // refreshed for the pushes still wanted.
    st.auth_failed = true;
    EndCancelled(self, found, std::move(attempted));
    Pump(self);
    return;
  }
  if (RetryAfterRefresh(self, it, attempted, r, now) ||
      GiveUpUnanswered(self, found, attempted, r, now)) {
    Pump(self);
    return;
  }
  switch (r.recipient_opted_out || r.permanent
              ? AttemptOutcome::kFail
              : ClassifyAttempt(r.transient ? 503 : r.http_status)) {
    case AttemptOutcome::kOk:
      Succeed(self, found, std::move(attempted), r, now);
      break;
    case AttemptOutcome::kRetry:
      RetryLater(self, found, std::move(attempted), r, now);
      break;
    case AttemptOutcome::kFail:
      Refused(self, found, std::move(attempted), r, now);
      break;
  }
  Pump(self);
}

void OnSendRecorded(Self* self, const SendRecorded& r) {
  auto& st = self->state;
  if (!r.held && st.recording > 0) st.recording--;
  auto found = st.items.find(r.push_id);
  if (found == st.items.end()) return;
  auto& it = found->second;
  st.in_flight--;
  st.busy.erase(it.order.request.contact_id);
  if (r.held) {
    HeldRecorded(self, found, r);
    Pump(self);
    return;
  }
  // Unless it goes now, it never went: a half-open trial is not spent on it.
  if (it.cancelled || !r.error.empty() || r.duplicate) st.breaker->OnNeutral();
  if (it.cancelled) {  // an opt-out came meanwhile: it never went
    st.cancelled++;
    Count(&PushOpCounters::cancelled, st, it);
    Drop(st, found);
  } else if (!r.error.empty()) {
    // Not recorded, not sent: tried again once the log may write.
    Logger("connectors")
        ->warn("event=push_sending_unrecorded system={} push_id={} error=\"{}\"", st.cfg.system,
               r.push_id, LogText(r.error));
    it.not_before = st.env->now_us() + st.env->append_retry_us;
    (Urgent(it.order.request) ? st.urgent : st.normal).push_front(r.push_id);
  } else if (r.duplicate) {
    FoundRecorded(self, found);
  } else {
    it.sending_recorded = true;
    if (Withheld(self, r.push_id)) {  // the gate closed meanwhile
      st.breaker->OnNeutral();
    } else if (HeldSince(st)) {
      // Paused, or the breaker opened, while it was being recorded: no
      // request went under this generation and none will (push.held says
      // so to a later run); it waits at the head of its queue for the
      // resume or the breaker's next trial, which record the next one.
      st.breaker->OnNeutral();
      GiveUpGeneration(self, it,
                       st.env->control && st.env->control->PausedBy(st.cfg.tenant, st.cfg.system)
                           ? "paused by an operator"
                           : "circuit breaker open");
    } else if (const int64_t now = st.env->now_us();
               st.limiter->NextAllowed(now, Urgent(it.order.request)) > now) {
      // The vendor said to wait meanwhile (a 429's Retry-After, no requests
      // or none of the day's left): held the same way, until it may go.
      st.breaker->OnNeutral();
      GiveUpGeneration(self, it, "held back by the vendor's rate limit");
    } else {
      Send(self, r.push_id);
    }
  }
  Pump(self);
}

}  // namespace dfm::connector_steps
