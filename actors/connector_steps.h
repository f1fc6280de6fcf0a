// The connector actor's steps (actors/connector_actor.h), shared by the
// files that make it up: connector_credits.cc (the daily credit budget and
// stored state), connector_send.cc (queues, pacing, requests, backfill
// reads), connector_answers.cc (what a vendor's answer does to a push) and
// connector_actor.cc (the behaviour). Internal to actors/; every function
// runs on the actor's own thread, with its state.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "actors/connector_actor.h"

namespace dfm::connector_steps {

using Self = caf::stateful_actor<ConnectorState>;
using Held = std::map<std::string, ConnectorState::Item>::iterator;

// connector_credits.cc. The daily credit budget (connector_actor.h):
// consumer state "credits", key CredentialsKey, value "<utc day>\n<credits
// spent that day, with those reserved by requests in flight>".
inline constexpr char kCreditsConsumer[] = "credits";
inline constexpr int64_t kDayUs = 86400LL * 1000000;
std::string CredentialsKey(const ConnectorState& st);
void RollCreditDay(ConnectorState& st, int64_t now);
Status StoreState(ConnectorState& st, const char* consumer, const std::vector<StateOp>& ops,
                  bool durable);
bool ReserveCredits(ConnectorState& st, ConnectorState::Item& it, int64_t now, int64_t* until);
void ChargeCredits(ConnectorState& st, ConnectorState::Item& it, int64_t now, int credits);

// connector_send.cc
void Pump(Self* self);
// Lets go of the clients a reload retired once nothing is in flight.
void ReleaseRetired(ConnectorState& st);

// connector_pick.cc
// Takes one of `contact`'s pacing tokens (cfg.pair_burst) at `now`.
void SpendPairToken(ConnectorState& st, const std::string& contact, int64_t now);
// The queue and position (*pos) of the next push that may go now; null
// when none may, *earliest then when one may (0: none waits on time).
std::deque<std::string>* Pick(ConnectorState& st, int64_t now,
                              std::deque<std::string>::iterator* pos, int64_t* earliest);
void Count(std::atomic<uint64_t> PushOpCounters::*which, ConnectorState& st,
           const ConnectorState::Item& it);
void Drop(ConnectorState& st, Held found);
void WakeAt(Self* self, int64_t at);
DomainEvent Event(const ConnectorState::Item& it, std::string_view type);
void Report(Self* self, const ConnectorState::Item& it, std::vector<DomainEvent> events);
void Supersede(Self* self, const DomainEvent& next);

// Whether `req` waits with the urgent pushes (and takes the limiter's
// urgent share): priority > 0, and every opt-out push (opt_out, mark_dnc)
// whatever its priority, so that a later opt-in of its contact never
// passes it, however often it goes back to its queue (connector_actor.h).
bool Urgent(const DomainEvent& req);
void Send(Self* self, const std::string& push_id);
// The idempotency keys (kDecisionKeySystem) of a push's push.sending and
// push.held of `generation`: generation 0's sending key is
// "r/<push id>/sending", each later one "r/<push id>/sending/<g>"; a held
// marker is "r/<push id>/held/<g>".
std::string SendingKey(const std::string& push_id, int generation);
std::string HeldKey(const std::string& push_id, int generation);
// Writes push.held for `it`'s generation before its current one (reason
// it.held_reason), counted in flight; answered by SendRecorded with held
// set (HeldRecorded). While it is not written (it.hold_unrecorded) the
// push does not go: it is written again first (RewriteHolds).
void RecordHeld(Self* self, const ConnectorState::Item& it);
// `it`, its push.sending of this generation durable and no request under
// it to go (held, or answered "not done"), gives the generation up: its
// push.held (`reason`) is written (RecordHeld) and it goes, when it goes,
// under the next, recorded anew. Requires it.sending_recorded.
void GiveUpGeneration(Self* self, ConnectorState::Item& it, std::string reason);
// `e` as the one draft of its push's contact stream under `key`.
std::vector<EventDraft> SendMarker(const ConnectorState& st, const ConnectorState::Item& it,
                                   DomainEvent e, std::string key);
bool Withheld(Self* self, const std::string& id);
void OnReadDone(Self* self, ReadDone& d);
void RefuseReads(ConnectorState& st, const TokenGrant& g);

// connector_answers.cc
bool MayApplyTwice(const ConnectorState& st, const ConnectorState::Item& it);
void OnDone(Self* self, HttpDone& d);
void OnSendRecorded(Self* self, const SendRecorded& r);

}  // namespace dfm::connector_steps
