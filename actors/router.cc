#include "actors/router.h"

#include <algorithm>

#include "actors/contact_actor.h"
#include "actors/router_internal.h"
#include "campaigns/task.h"
#include "connectors/connector.h"
#include "events/sealing.h"
#include "events/webhook_received.h"
#include "projections/sync_projections.h"
#include "sync/consent.h"
#include "sync/contact_snapshot.h"
#include "sync/erasure.h"
#include "sync/identity.h"
#include "sync/settle.h"
#include "util/logging.h"

namespace dfm {
namespace router_internal {

// Every webhook up to this one has been decided.
uint64_t Decided(const RouterState& st) {
  uint64_t first = st.in_flight.empty() ? st.next_seq : st.in_flight.begin()->first;
  if (!st.held_webhooks.empty()) first = std::min(first, st.held_webhooks.begin()->first);
  return first - 1;
}

// Shows the router's state on the status board (GET /v1/health).
void Publish(Self* self) {
  auto& st = self->state;
  if (!st.env->board) return;
  RouterStatus& b = st.env->board->router;
  constexpr auto kRelaxed = std::memory_order_relaxed;
  b.decided.store(Decided(st), kRelaxed);
  b.SetDecided((st.in_flight.empty() ? st.next_seq : st.in_flight.begin()->first) - 1,
               st.held_version, st.held_webhooks);
  b.read.store(st.next_seq - 1, kRelaxed);
  b.webhooks_in_flight.store(st.in_flight.size(), kRelaxed);
  b.contacts_live.store(st.contacts.size(), kRelaxed);
  b.facts_routed.store(st.facts_routed, kRelaxed);
  b.quarantined.store(st.quarantined, kRelaxed);
  b.contacts_held.store(std::count_if(st.failing.begin(), st.failing.end(),
                                      [](const auto& f) { return f.second.held_until_us != 0; }),
                        kRelaxed);
}

bool CommitCheckpoint(Self* self) {
  auto& st = self->state;
  uint64_t cp = Decided(st);
  if (cp <= st.committed) return true;
  Status s = st.env->log->CommitConsumer(kRouterConsumer, cp, {});
  if (s.ok()) {
    st.committed = cp;
    return true;
  }
  Logger("actors")->warn("event=router_checkpoint_failed error=\"{}\"", s.ToString());
  return false;
}

// Commits the checkpoint when it is far behind or was last moved a while
// ago; otherwise makes sure an idle_atom comes to commit it later. So the
// router's write does not join every group commit of a busy log.
void MaybeCommit(Self* self) {
  auto& st = self->state;
  int64_t now = st.env->now_us();
  uint64_t done = Decided(st);
  if (done <= st.committed) return;
  bool due =
      done - st.committed >= kRouterCommitEvery || now - st.last_commit_us >= kRouterCommitUs;
  if (due && CommitCheckpoint(self)) {
    st.last_commit_us = now;
  } else if (!st.commit_scheduled) {  // later, or again after a failed commit
    st.commit_scheduled = true;
    self->delayed_send(self, std::chrono::microseconds(kRouterCommitUs), idle_atom::value);
  }
}

void Answered(Self* self, uint64_t webhook_seq) {
  auto& st = self->state;
  auto it = st.in_flight.find(webhook_seq);
  if (it == st.in_flight.end()) return;
  bool was_full = st.in_flight.size() >= st.env->router_max_in_flight;
  if (--it->second <= 0) st.in_flight.erase(it);
  if (was_full && st.in_flight.size() < st.env->router_max_in_flight)
    self->send(self, poll_atom::value);
  MaybeCommit(self);
  Publish(self);
}

void OwnAppend(Self* self, uint64_t token) {
  auto& st = self->state;
  auto it = st.own_appends.find(token);
  if (it == st.own_appends.end()) return;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.env->log->AppendAsync(it->second.drafts,
                           [me, token](const Status& s, const std::vector<AppendOutcome>&) {
                             AppendResult r;
                             r.token = token;
                             if (!s.ok()) r.error = s.ToString();
                             caf::anon_send(me, std::move(r));
                           });
}

// Routes `e`; false when it cannot be decided now (an earlier record could
// not be looked up, or a settlement's webhook read) and is to be read
// again later.
bool Route(Self* self, const Event& e) {
  auto& st = self->state;
  if (e.type == kReplayRequestedType) {
    RouteReplay(self, e);
    return true;
  }
  if (e.type == ev::kIdentitySettled) return RouteSettled(self, e);
  if (e.type == kTaskClaimed) {
    RouteCampaignSend(self, e);
    return true;
  }
  if (e.type == kTaskSkipped) {
    RouteCampaignWithdraw(self, e);
    return true;
  }
  if (e.type == kContactErasedType) {
    RouteErased(self, e);
    return true;
  }
  bool imported = e.type == kContactImportedType;
  if (e.type != WebhookReceived::kType && !imported) return true;
  WebhookReceived w;
  if (!DecodeWebhookReceived(e.schema_version, e.payload, &w).ok())
    return true;  // verify reports it
  const InboundMapper* mapper = FindMapperFor(e.type, w.system);
  if (!mapper) return true;
  // Read again: what the router recorded the first time stands (a
  // quarantine for the whole webhook; a conflict or a rejection for its
  // fact), even if the mapper or the identities would decide otherwise now.
  // Looked up before anything is routed, so a failed lookup routes nothing.
  std::string first_type;
  const Earlier first = EarlierRecord(self, e, 0, &first_type);
  if (first == Earlier::kUnknown) return false;
  if (first_type == ev::kWebhookQuarantined && Stands(self, e, first)) return true;
  std::vector<ContactFact> facts;
  Status s = (*mapper)(w, st.env->MapperFor(e.tenant, w.system), &facts);
  if (!s.ok() && Stands(self, e, first)) return true;  // it mapped the first time
  if (!s.ok()) {
    DomainEvent q;
    q.type = std::string(ev::kWebhookQuarantined);
    q.system = w.system;
    q.reason = s.message();
    st.quarantined++;
    Logger("actors")->warn("event=webhook_quarantined seq={} system={} reason=\"{}\"", e.seq,
                           w.system, LogText(s.message()));
    RecordOnSource(self, e, w.system, q, 0);
    return true;
  }
  if (!imported && e.seq > st.inbound_counted && st.env->board) {
    st.env->board->router.CountInbound(e.tenant, w.system, facts.size());
    st.inbound_counted = e.seq;
  }
  std::vector<Earlier> earlier(facts.size(), Earlier::kNone);
  // A conflict's opt-outs are handed again with it: read before any is routed.
  std::vector<std::vector<std::pair<std::string, std::string>>> conflicts(facts.size());
  for (size_t n = 0; n < facts.size(); ++n) {
    earlier[n] = n == 0 ? first : EarlierRecord(self, e, n, nullptr);
    if (earlier[n] == Earlier::kUnknown) return false;
    if ((earlier[n] == Earlier::kRecorded || earlier[n] == Earlier::kPending) &&
        StatesAnOptOut(facts[n]) && !RecordedCandidates(self, e, n, earlier[n], &conflicts[n]))
      return false;
  }
  for (size_t n = 0; n < facts.size(); ++n) {
    ContactFact& f = facts[n];
    StampFact(&f, e, static_cast<uint32_t>(n));
    if (Stands(self, e, earlier[n])) {  // a conflict stays one until settled
      HandConflictOptOuts(self, e, f, conflicts[n]);
      continue;
    }
    FactLookups lookups(self);
    Resolution r = Resolve(
        f, [&](const std::string& key) { return lookups(key); },
        st.env->ContextFor(f.tenant).fold_plus_addressing);
    if (r.kind == Resolution::Kind::kNew && n > 0) r.contact_id = NewContactId(e.id, n);
    if (r.kind == Resolution::Kind::kMatched || r.kind == Resolution::Kind::kNew) {
      Claim(self, f, r.contact_id, lookups);
      st.in_flight[e.seq]++;
      st.facts_routed++;
      SendToContact(self, e.seq, e.tenant, r.contact_id, std::move(f));
    } else {
      DomainEvent d;
      d.system = f.system;
      d.external_id = f.external_id;
      if (r.kind == Resolution::Kind::kAmbiguous) {
        d.type = std::string(ev::kIdentityConflict);
        d.candidates = r.candidates;
        d.fields = f.fields;
      } else {
        d.type = std::string(ev::kFactRejected);
        d.reason = r.reason;
      }
      RecordOnSource(self, e, f.system, d, n);
      if (r.kind == Resolution::Kind::kAmbiguous) HandConflictOptOuts(self, e, f, r.candidates);
    }
  }
  return true;
}

// Reads again env->append_retry_us from now, whether or not anything new
// is appended meanwhile: the log could not be read, a lookup failed, or a
// contact failed. At most one such poll is pending.
void PollLater(Self* self) {
  auto& st = self->state;
  if (st.poll_later_scheduled) return;
  st.poll_later_scheduled = true;
  self->delayed_send(self, std::chrono::microseconds(st.env->append_retry_us), poll_atom::value,
                     retry_atom::value);
}

void Poll(Self* self) {
  auto& st = self->state;
  if (!st.recovered) return;  // Recover polls once it succeeds
  if (st.in_flight.size() >= st.env->router_max_in_flight) return;  // answers will poll again
  std::vector<Event> batch;
  Status s = st.env->log->Read(st.next_seq, st.env->router_batch, &batch);
  if (!s.ok()) {
    Logger("actors")->error("event=router_read_failed seq={} error=\"{}\"", st.next_seq,
                            s.ToString());
    PollLater(self);
    return;
  }
  bool stopped = false;
  for (const auto& e : batch) {
    if (!Route(self, e)) {  // read from it again, after a pause
      Logger("actors")->error("event=router_lookup_failed seq={}", e.seq);
      PollLater(self);
      stopped = true;
      break;
    }
    st.next_seq = e.seq + 1;
  }
  PruneClaims(self);
  MaybeCommit(self);
  Publish(self);
  if (!stopped && batch.size() == st.env->router_batch) self->send(self, poll_atom::value);
}

// Spawns the contacts that have pushes not yet settled, so they hand them to
// their connectors again (sync_status projection, caught up before start:
// its u/ rows, one per push still open). A scan that fails spawns none of
// them.
Status RecoverPendingPushes(Self* self) {
  auto& st = self->state;
  std::vector<std::pair<std::string, std::string>> to_spawn;
  SyncStatusProjection::Unsettled u;
  Status scanned = st.env->log->ScanConsumerState(SyncStatusProjection::kName,
                                                  SyncStatusProjection::kUnsettledPrefix,
                                                  [&](std::string_view, std::string_view v) {
                                                    if (SyncStatusProjection::ParseUnsettled(v, &u))
                                                      to_spawn.emplace_back(u.tenant, u.contact_id);
                                                    return true;
                                                  });
  if (!scanned.ok()) return scanned;
  for (const auto& [tenant, contact] : to_spawn) {
    auto key = ContactKey(tenant, contact);
    if (!st.contacts.count(key)) Spawn(self, tenant, contact, true);
  }
  if (!to_spawn.empty())
    Logger("actors")->info("event=pending_pushes_recovered contacts={}", st.contacts.size());
  return Status::OK();
}

// The router's start: its checkpoint, then the contacts with unsettled
// pushes, then the first poll. Nothing is read from the log before both
// succeed (a contact a fact spawned first would not re-drive its pushes:
// an opt-out among them could wait for that contact's next fact); a
// failure is logged (the first, then every 60th) and the start is made
// again a second later.
void Recover(Self* self) {
  auto& st = self->state;
  uint64_t cp = 0;
  Status s = st.env->log->ReadCheckpoint(kRouterConsumer, &cp);
  if (s.ok()) s = RecoverPendingPushes(self);
  if (!s.ok()) {
    if (st.recover_failures++ % 60 == 0)
      Logger("actors")->error("event=router_start_failed attempts={} retry_in_ms=1000 error=\"{}\"",
                              st.recover_failures, s.ToString());
    self->delayed_send(self, std::chrono::seconds(1), recover_atom::value, retry_atom::value);
    Publish(self);
    return;
  }
  if (st.recover_failures > 0)
    Logger("actors")->info("event=router_started attempts={}", st.recover_failures + 1);
  st.committed = cp;
  st.next_seq = cp + 1;
  st.recovered = true;
  Poll(self);
  Publish(self);  // Poll does not when it cannot read
}

namespace {

// A contact's actor ended (monitored): its entry goes; one that stopped
// with an error (its stream could not be read) took facts with it, so the
// router starts over from the checkpoint. What is read again is not
// decided again (reread_until; contacts skip decided facts).
void OnContactDown(Self* self, const caf::down_msg& m) {
  auto& s = self->state;
  auto found = s.keys_by_actor.find(m.source.id());
  if (found == s.keys_by_actor.end()) return;
  const std::string key = std::move(found->second);
  s.keys_by_actor.erase(found);  // before anything spawns (and may rehash the map)
  auto it = s.contacts.find(key);
  // A passivated contact's entry is gone, or already names its successor.
  if (it != s.contacts.end() && it->second.actor.address() == m.source) s.contacts.erase(it);
  if (m.reason && m.reason != caf::exit_reason::user_shutdown) {
    Logger("actors")->error("event=contact_failed restart_from={}", s.committed + 1);
    Hold(self, key);
    ReadAgainFromCheckpoint(self);
    RespawnOwing(self);
  }
  Publish(self);
}

// A contact decided a fact handed to it: its identity claims settle, and
// the webhook is answered.
void OnFactDone(Self* self, const FactDone& d) {
  auto& state = self->state;
  if (!state.failing.empty() || !state.held_reports.empty())
    Recovered(self, ContactKey(d.tenant, d.contact_id));
  // Handed before a read again: the fact is handed again as the new
  // reading reaches it (or waits for a held contact), and that
  // hand-out's answer is the one awaited.
  if (d.epoch != state.epoch) return;
  auto it = state.claims_by_webhook.find(d.webhook_seq);
  if (it != state.claims_by_webhook.end()) {
    for (const auto& k : it->second) {
      auto c = state.claims.find(k);
      // Nothing appended: the projection will never show the claim;
      // it stays settled "now" (the log head) and goes with the next prune.
      // (A claim a later fact has taken over waits for that one.)
      if (c != state.claims.end() && c->second.contact_id == d.contact_id &&
          c->second.webhook_seq == d.webhook_seq)
        c->second.settled_at = d.last_seq ? d.last_seq : state.env->log->LastSequence();
    }
  }
  Answered(self, d.webhook_seq);
}

}  // namespace

caf::behavior Behavior(Self* self, std::shared_ptr<const SyncEnv> env) {
  auto& st = self->state;
  st.env = std::move(env);
  // committed and next_seq are read by Recover (recover_atom).
  st.reread_until = st.env->log->LastSequence();
  self->set_down_handler([self](caf::down_msg& m) { OnContactDown(self, m); });
  // Shutting down: the contacts go with the router.
  self->set_exit_handler([self](caf::exit_msg& m) {
    for (auto& [key, c] : self->state.contacts) self->send_exit(c.actor, m.reason);
    CommitCheckpoint(self);
    self->quit(m.reason);
  });
  return {
      [self](recover_atom) {  // start: once the connectors know the router
        if (!self->state.recovered && self->state.recover_failures == 0) Recover(self);
      },
      [self](recover_atom, retry_atom) {
        if (!self->state.recovered) Recover(self);
      },
      [self](poll_atom) { Poll(self); },
      [self](poll_atom, retry_atom) {
        self->state.poll_later_scheduled = false;
        Poll(self);
      },
      [self](idle_atom) {
        self->state.commit_scheduled = false;
        MaybeCommit(self);
      },
      [self](release_atom) { Release(self); },
      [self](FactDone& d) { OnFactDone(self, d); },
      [self](AppendResult& r) {
        auto& state = self->state;
        auto it = state.own_appends.find(r.token);
        if (it == state.own_appends.end()) return;
        if (!r.error.empty()) {
          self->delayed_send(self, std::chrono::microseconds(state.env->append_retry_us),
                             retry_atom::value, r.token);
          return;
        }
        uint64_t seq = it->second.webhook_seq;
        state.own_appends.erase(it);
        Answered(self, seq);
      },
      [self](retry_atom, uint64_t token) { OwnAppend(self, token); },
      [self](started_atom) {
        if (self->current_sender()) Started(self, self->current_sender()->id());
      },
      [self](PushReport& r) {
        ReportToContact(self, std::move(r));
        Publish(self);  // the contact may have been spawned again
      },
      [self](passivate_atom, const std::string& tenant, const std::string& contact_id,
             uint64_t received) {
        auto& state = self->state;
        auto it = state.contacts.find(ContactKey(tenant, contact_id));
        if (it == state.contacts.end() || it->second.sent != received) return false;
        Recovered(self, it->first);
        state.contacts.erase(it);
        Publish(self);
        return true;
      },
  };
}

}  // namespace router_internal

caf::behavior Router(caf::stateful_actor<RouterState>* self, std::shared_ptr<const SyncEnv> env) {
  return router_internal::Behavior(self, std::move(env));
}

}  // namespace dfm
