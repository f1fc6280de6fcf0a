#include "actors/contact_actor.h"

#include <algorithm>

#include "events/sealing.h"
#include "projections/sync_projections.h"
#include "sync/consent.h"
#include "sync/contact_snapshot.h"
#include "sync/erasure.h"
#include "sync/identity.h"
#include "util/logging.h"

namespace dfm {

namespace {

using Self = caf::stateful_actor<ContactActorState>;

// Applies an appended event to the model and the outstanding pushes.
void ApplyOne(ContactActorState& st, const DomainEvent& d, uint64_t seq, int64_t recorded_at_us,
              const EventId& id, const EventId& correlation) {
  Apply(&st.model, d, seq, recorded_at_us);
  if (d.type == ev::kPushRequested) {
    st.outstanding[d.push_id] = PushOrder{st.tenant, d, id, correlation};
  } else if (SettlesPush(d)) {
    st.outstanding.erase(d.push_id);
  }
}

// An erased person's pushes are not ordered, but their consent ones (as
// the connectors' cancel of them keeps those: PushCancel).
void Order(Self* self, const PushOrder& o) {
  if (self->state.erased && !IsConsentOp(o.request.op)) return;
  caf::actor c = self->state.env->Connector(self->state.tenant, o.request.system);
  if (c) self->send(c, o);
}

void Next(Self* self);

// Appends `drafts` (the events `events` encode) and calls `then` once durable.
void Append(Self* self, std::vector<EventDraft> drafts, std::vector<DomainEvent> events,
            std::function<void(const AppendResult&)> then) {
  auto& st = self->state;
  st.token++;
  st.drafts = std::move(drafts);
  st.events = std::move(events);
  st.then = std::move(then);
  caf::actor me = caf::actor_cast<caf::actor>(self);
  uint64_t token = st.token;
  st.env->log->AppendAsync(st.drafts, [me, token](const Status& s,
                                                  const std::vector<AppendOutcome>& out) {
    AppendResult r;
    r.token = token;
    if (!s.ok()) r.error = s.ToString();
    for (const auto& o : out) {
      r.seqs.push_back(o.seq);
      r.ids.push_back(o.id);
    }
    caf::anon_send(me, std::move(r));
  });
}

// The tenant's sync context for a decision now: targets without a
// connector dropped.
SyncContext Context(Self* self) {
  auto& st = self->state;
  SyncContext ctx = st.env->ContextFor(st.tenant);
  ctx.now_us = st.env->now_us();
  for (auto it = ctx.targets.begin(); it != ctx.targets.end();)
    it = st.env->Connector(st.tenant, it->first) ? std::next(it) : ctx.targets.erase(it);
  if (!ctx.enrichment.empty() && !st.env->Connector(st.tenant, ctx.enrichment)) ctx.enrichment.clear();
  if (!st.env->subject_hash_key.empty()) {
    // The opt-out registry's z/ rows: an erased person's consent, by the
    // keyed hash of the phone or email (sync/erasure.h).
    // And the router's table of erasures it has read, which the registry
    // may not have folded yet (actors/erased_subjects.h).
    EventLog* log = st.env->log;
    const std::string tenant = st.tenant, hash_key = st.env->subject_hash_key;
    std::shared_ptr<const ErasedSubjects> recent = st.env->erased_subjects;
    ctx.erased_consent = [log, tenant, hash_key, recent](const std::string& who, const std::string& channel)
        -> std::optional<ErasedConsent> {
      std::string v;
      const std::string key = ErasedSubjectKey(tenant, SubjectHash(hash_key, tenant, who), channel);
      std::optional<ErasedConsent> found = recent ? recent->Find(key) : std::nullopt;
      if (!log->GetConsumerState(OptOutRegistryProjection::kName, key, &v).ok()) return found;
      ErasedConsent c;
      c.out = v.rfind("out ", 0) == 0;
      size_t sp = v.find(' ');
      c.at_us = sp == std::string::npos ? 0 : std::strtoll(v.c_str() + sp + 1, nullptr, 10);
      if (found && !ConsentSupersedes(c.out, c.at_us, found->out, found->at_us)) return found;
      return c;
    };
  }
  {
    // The mappings projection's x/ rows: who holds a record (a row that
    // cannot be read: somebody, so that nothing is taken on a guess).
    EventLog* log = st.env->log;
    const std::string tenant = st.tenant;
    ctx.record_holder = [log, tenant](const std::string& system, const std::string& id) {
      std::string holder;
      Status s = log->GetConsumerState(MappingsProjection::kName, ExternalIdKey(tenant, system, id),
                                       &holder);
      if (s.IsNotFound()) return std::string();
      return s.ok() ? holder : std::string("(unreadable)");
    };
  }
  if (!ctx.enrichment.empty()) {
    // The enrichments projection: one point read, only when a contact
    // would be asked about.
    EventLog* log = st.env->log;
    const std::string tenant = st.tenant;
    ctx.last_enriched = [log, tenant](const std::string& email, const std::string& domain) {
      std::string v;
      const std::string key = !email.empty() ? EnrichedEmailKey(tenant, email)
                                             : EnrichedDomainKey(tenant, domain);
      if (!log->GetConsumerState(EnrichmentsProjection::kName, key, &v).ok()) return int64_t{0};
      return static_cast<int64_t>(std::strtoll(v.c_str(), nullptr, 10));
    };
  }
  return ctx;
}

// What one append of decisions answers: the facts (or the replay) decided
// and, per event, which of them it answers and its correlation.
struct Decisions {
  std::vector<EventDraft> drafts;
  std::vector<DomainEvent> events;
  std::vector<size_t> owner;          // events[i] answers done[owner[i]]
  std::vector<EventId> correlations;  // events[i]'s
  std::vector<FactDone> done;

  // Adds what `answer` decided: event i on stream_of(event), idempotency
  // key `key_prefix` + i, caused by `causation` and correlated with
  // `correlation`.
  void Add(std::vector<DomainEvent> decided, FactDone answer,
           const std::function<std::string(const DomainEvent&)>& stream_of,
           const std::string& tenant, const std::string& key_prefix, const EventId& causation,
           const EventId& correlation) {
    for (size_t i = 0; i < decided.size(); ++i) {
      EventDraft draft = ToDraft(decided[i], tenant, stream_of(decided[i]), causation, correlation);
      draft.idempotency_system = kDecisionKeySystem;
      draft.idempotency_key = key_prefix + std::to_string(i);
      drafts.push_back(std::move(draft));
      events.push_back(std::move(decided[i]));
      owner.push_back(done.size());
      correlations.push_back(correlation);
    }
    done.push_back(std::move(answer));
  }
};

// The phone and email a consent decision is about (docs/sync-rules.md).
std::vector<std::string> ConsentSubjects(const DomainEvent& e) {
  std::vector<std::string> out;
  for (const char* f : {fields::kPhone, fields::kEmail})
    if (auto v = e.fields.find(f); v != e.fields.end() && !v->second.empty()) out.push_back(v->second);
  return out;
}

// An opt-out among `events` closes the gate now, before it is durable
// (actors/send_gate.h): no send to the person leaves meanwhile.
void CloseGateForOptOuts(const ContactActorState& st, const std::vector<DomainEvent>& events) {
  if (!st.env->gate) return;
  for (const auto& e : events)
    if (e.type == ev::kOptedOut)
      for (const auto& who : ConsentSubjects(e))
        st.env->gate->Close(st.tenant, who, SplitChannels(e.channel));
}

// What `e`, durable now, asks of the other actors: an opt-in opens the gate
// again (texts may go) and an opt-out closes it again (so that of a START
// and a STOP decided together the last stands), and a send it refuses
// (message.refused of a push: an opt-out came first, or its campaign was
// cancelled) is dropped by its connector if it has not gone. Whether
// decided from a fact or a report.
void ActOnDurable(Self* self, const DomainEvent& e) {
  auto& s = self->state;
  if ((e.type == ev::kOptedIn || e.type == ev::kOptedOut) && s.env->gate)
    for (const auto& who : ConsentSubjects(e)) {
      if (e.type == ev::kOptedIn)
        s.env->gate->Open(s.tenant, who, SplitChannels(e.channel));
      else
        s.env->gate->Close(s.tenant, who, SplitChannels(e.channel));
    }
  if (e.type == ev::kMessageRefused && !e.push_id.empty())
    if (caf::actor c = s.env->Connector(s.tenant, e.system))
      self->send(c, PushCancel{s.tenant, e.push_id, e.reason, {}});
}

// Appends `ds`. Once durable, each event is applied to the model, the
// pushes it requests are ordered (`redriven`: the connector looks for an
// earlier write first), the sends it refuses are cancelled at their
// connector, and the router gets each FactDone.
void AppendDecisions(Self* self, Decisions ds, bool redriven) {
  auto& st = self->state;
  if (ds.events.empty()) {
    for (const auto& d : ds.done) self->send(st.router, d);
    Next(self);
    return;
  }
  CloseGateForOptOuts(st, ds.events);
  Append(self, std::move(ds.drafts), std::move(ds.events),
         [self, done = std::move(ds.done), owner = std::move(ds.owner),
          correlations = std::move(ds.correlations), redriven](const AppendResult& r) mutable {
           auto& s = self->state;
           int64_t now = s.env->now_us();
           std::vector<PushOrder> orders;
           for (size_t i = 0; i < s.events.size() && i < r.seqs.size(); ++i) {
             const DomainEvent& e = s.events[i];
             ApplyOne(s, e, r.seqs[i], now, r.ids[i], correlations[i]);
             ActOnDurable(self, e);
             if (e.type == ev::kPushRequested)
               orders.push_back(PushOrder{s.tenant, e, r.ids[i], correlations[i], redriven});
             FactDone& d = done[owner[i]];
             d.last_seq = std::max(d.last_seq, r.seqs[i]);
           }
           // A send that a later fact of this append refused (an opt-out) is
           // settled already: it is not ordered at all.
           for (const auto& o : orders)
             if (s.outstanding.count(o.request.push_id)) Order(self, o);
           for (const auto& d : done) self->send(s.router, d);
         });
}

// Decides facts that waited together, in one append (the contract in
// contact_actor.h). Each after the first is decided against the state the
// ones before it leave: their decisions are applied to the model at once,
// with no sequence number, and again with theirs once durable, which
// leaves the state as it was (Apply, sync/contact_model.h). So the model
// runs ahead of the log only while this append is under way, when the
// actor handles nothing else; if the actor fails, it recovers from its
// stream. (A copy of the model per append instead was most of the sync's
// CPU under one contact's flood: its messages grow with every text.)
void DecideFacts(Self* self, const std::vector<RoutedFact>& facts) {
  auto& st = self->state;
  const SyncContext ctx = Context(self);
  const std::string contact_stream = ContactStream(st.contact_id);
  Decisions ds;
  for (size_t f = 0; f < facts.size(); ++f) {
    const ContactFact& fact = facts[f].fact;
    std::vector<DomainEvent> decided = Decide(st.model, fact, ctx);
    if (f + 1 < facts.size())
      for (const auto& d : decided) Apply(&st.model, d, 0, ctx.now_us);
    const std::string source_stream = SourceStream(fact.system);
    ds.Add(
        std::move(decided), FactDone{st.tenant, st.contact_id, fact.webhook_seq, 0, facts[f].epoch},
        [&](const DomainEvent& d) { return d.contact_id.empty() ? source_stream : contact_stream; },
        st.tenant, "d/" + st.contact_id + "/" + FactTag(fact) + "/", fact.webhook_id,
        fact.correlation_id.IsZero() ? fact.webhook_id : fact.correlation_id);
  }
  AppendDecisions(self, std::move(ds), /*redriven=*/false);
}

// Decides a replay's re-drive like a fact: caused by and correlated with
// the replay.requested event. A contact that does not exist gets no stream
// of its own from a replay: its skips are recorded beside the request.
void DecideRedriveItem(Self* self, const Redrive& r) {
  auto& st = self->state;
  const std::string stream =
      st.model.exists ? ContactStream(st.contact_id) : std::string(kReplayStream);
  Decisions ds;
  ds.Add(
      DecideRedrive(st.model, r.items, r.replay_seq, Context(self)),
      FactDone{st.tenant, st.contact_id, r.replay_seq, 0, r.epoch},
      [&](const DomainEvent&) { return stream; }, st.tenant,
      "x/" + st.contact_id + "/" + std::to_string(r.replay_seq) + "/", r.replay_id, r.replay_id);
  AppendDecisions(self, std::move(ds), /*redriven=*/true);
}

void RecordReport(Self* self, const PushReport& rep) {
  auto& st = self->state;
  std::vector<DomainEvent> events = rep.events;
  // Only a send that died, an answer (enrichment, classifier, read back), an
  // opt-out or opt-in taken (read back after it), an upsert (a record it
  // made told the held opt-outs) or a record found anew has anything to
  // decide (DecideReport).
  bool decide = std::any_of(rep.events.begin(), rep.events.end(), [](const DomainEvent& e) {
    return (e.type == ev::kPushDeadLettered && e.op == "send") ||
           (e.type == ev::kPushSucceeded &&
            (IsAnswerOp(e.op) || e.op == "opt_out" || e.op == "opt_in" || e.op == "upsert" ||
             e.fields.count("answer.contact_id")));
  });
  if (decide)
    for (auto& e : DecideReport(st.model, rep.events, Context(self))) events.push_back(std::move(e));
  std::vector<EventDraft> drafts;
  // Keys: the reported push's own events by their push id; what was
  // decided from them without one (a contact.opted_out from a carrier's
  // refusal or a classifier's verdict, the fields an enrichment fills) by
  // the push reported and its place, so that no two reports share a key.
  const std::string about = rep.events.empty() ? st.contact_id : rep.events.front().push_id;
  for (size_t i = 0; i < events.size(); ++i) {
    const DomainEvent& e = events[i];
    EventDraft d = ToDraft(e, st.tenant, ContactStream(st.contact_id), rep.request_id, rep.correlation_id);
    d.idempotency_system = kDecisionKeySystem;
    d.idempotency_key = e.type == ev::kPushRequested ? "r/" + e.push_id + "/requested"
                        : e.push_id.empty()
                            ? "r/" + about + "/decided/" + std::to_string(i) + "/" + e.type
                            : ReportedEventKey(e.push_id, e.attempt, e.type);
    drafts.push_back(std::move(d));
  }
  EventId correlation = rep.correlation_id;
  CloseGateForOptOuts(st, events);  // a carrier's refusal, a classifier's verdict, a read back
  Append(self, std::move(drafts), std::move(events), [self, correlation](const AppendResult& r) {
    auto& s = self->state;
    int64_t now = s.env->now_us();
    for (size_t i = 0; i < s.events.size() && i < r.seqs.size(); ++i) {
      ApplyOne(s, s.events[i], r.seqs[i], now, r.ids[i], correlation);
      ActOnDurable(self, s.events[i]);
      if (s.events[i].type == ev::kPushRequested)
        Order(self, PushOrder{s.tenant, s.events[i], r.ids[i], correlation});
    }
  });
}

// The person erased (contact.erased): their state, and the pushes they
// had waiting, forgotten; no snapshot of them is made again.
void ForgetPerson(ContactActorState* st) {
  st->erased = true;
  const int64_t memory = st->model.message_memory_us;
  st->model = ContactState{};
  st->model.contact_id = st->contact_id;
  st->model.message_memory_us = memory;
  st->outstanding.clear();
  st->since_snapshot = 0;
}

// The contact's one idle timer, due in `in`.
void SetIdleTimer(Self* self, caf::actor_clock::duration_type in) {
  self->state.idle_timer_set = true;
  self->delayed_send(self, in, idle_atom::value);
}

caf::actor_clock::duration_type IdleLimit(const ContactActorState& st) {
  return std::chrono::microseconds(st.env->contact_idle_us);
}

// It has no work from now: its timer is set unless one already is (that
// one, come due, sets itself again for what is left). Idleness is told by
// CAF's clock, the timers' own (steady; simulated under the test
// coordinator), so a wall clock's steps move no passivation.
void FellIdle(Self* self) {
  auto& st = self->state;
  st.idle_since = self->clock().now();
  if (!st.idle_timer_set) SetIdleTimer(self, IdleLimit(st));
}

void Next(Self* self) {
  auto& st = self->state;
  st.busy = false;
  st.then = nullptr;
  st.drafts.clear();
  st.events.clear();
  while (!st.busy && !st.work.empty()) {
    caf::message m = std::move(st.work.front());
    st.work.pop_front();
    st.busy = true;
    if (m.match_elements<RoutedFact>()) {
      // With the facts queued right behind it: decided together.
      std::vector<RoutedFact> facts;
      facts.push_back(m.move_if_unshared<RoutedFact>(0));
      while (!st.work.empty() && facts.size() < kContactMaxFactsPerAppend &&
             st.work.front().match_elements<RoutedFact>()) {
        facts.push_back(st.work.front().move_if_unshared<RoutedFact>(0));
        st.work.pop_front();
      }
      DecideFacts(self, facts);
    } else if (m.match_elements<Redrive>()) {
      DecideRedriveItem(self, m.get_as<Redrive>(0));
    } else if (m.match_elements<PushReport>()) {
      RecordReport(self, m.get_as<PushReport>(0));
    } else if (m.match_elements<erase_atom>()) {
      ForgetPerson(&st);  // everything routed before the erasure decided
      st.busy = false;
    } else {
      st.busy = false;
    }
  }
  if (!st.busy && st.work.empty()) FellIdle(self);
}

// Work the actor gives itself: queued as the router's is, but not counted
// in `received` (the passivation handshake counts the router's messages).
void EnqueueOwn(Self* self, caf::message m) {
  auto& st = self->state;
  st.work.push_back(std::move(m));
  if (!st.busy) Next(self);
}

// Work from the router, counted for the passivation handshake.
void Enqueue(Self* self, caf::message m) {
  self->state.received++;
  EnqueueOwn(self, std::move(m));
}

// Keeps the contact's state as a snapshot (sync/contact_snapshot.h) when
// enough events were applied since the last one, or `always` (passivation)
// when any were. REQUIRES: the state is what the log holds (no append
// under way whose decisions were applied early).
void MaybeSnapshot(Self* self, bool always) {
  auto& st = self->state;
  SnapshotStore* store = st.env->snapshots;
  if (!store || st.since_snapshot == 0 || st.erased) return;
  const uint64_t due = std::max<uint64_t>(st.env->snapshot_every, st.model.messages.size());
  if (!always && st.since_snapshot < due) return;
  std::vector<OutstandingPush> outstanding;
  outstanding.reserve(st.outstanding.size());
  for (const auto& [id, o] : st.outstanding)
    outstanding.push_back(OutstandingPush{o.request, o.request_id, o.correlation_id});
  store->Put(ContactSnapshotKey(st.tenant, st.contact_id), st.model.last_event_seq,
             EncodeContactSnapshot(st.model, outstanding));
  st.since_snapshot = 0;
}

// Starts from the contact's snapshot when one is kept and readable (one
// past the log's head, as after `dfm log recover`, is not), then applies
// the stream's events after it; without one, the whole stream.
Status Recover(Self* self) {
  auto& st = self->state;
  uint64_t from = 1;
  std::string bytes;
  if (st.env->snapshots &&
      st.env->snapshots->Get(ContactSnapshotKey(st.tenant, st.contact_id), &bytes).ok()) {
    std::vector<OutstandingPush> outstanding;
    Status d = DecodeContactSnapshot(bytes, &st.model, &outstanding);
    if (d.ok() && st.model.contact_id == st.contact_id &&
        st.model.last_event_seq <= st.env->log->LastSequence()) {
      for (auto& o : outstanding) {
        const std::string id = o.request.push_id;
        st.outstanding[id] = PushOrder{st.tenant, std::move(o.request), o.request_id, o.correlation_id};
      }
      from = st.model.last_event_seq + 1;
    } else {
      Logger("actors")->warn("event=contact_snapshot_unused contact={} reason=\"{}\"", st.contact_id,
                             d.ok() ? "ahead of the log" : d.message());
      const int64_t memory = st.model.message_memory_us;
      st.model = ContactState{};
      st.model.contact_id = st.contact_id;
      st.model.message_memory_us = memory;
      st.outstanding.clear();
    }
  }
  return st.env->log->ScanStream(
      st.tenant, ContactStream(st.contact_id),
      [&st](const Event& e) {
        if (e.type == kContactErasedType) {
          // Erased after its snapshot was made (one restored from a
          // backup, or written as the erasure ran): nothing of it stands.
          ForgetPerson(&st);
          return true;
        }
        DomainEvent d;
        if (AsDomainEvent(e, &d)) ApplyOne(st, d, e.seq, e.recorded_at_us, e.id, e.correlation_id);
        st.since_snapshot++;
        return true;
      },
      from);
}

// The contact's unsettled pushes handed on again at the service's start,
// in the order they were requested (event ids grow with the log), so a
// contact's messages reach a system in the order the person sent them,
// across restarts too; not in push id order.
void RedriveAtStart(Self* self) {
  auto& st = self->state;
  std::vector<const PushOrder*> order;
  for (const auto& [id, o] : st.outstanding) order.push_back(&o);
  std::sort(order.begin(), order.end(),
            [](const PushOrder* a, const PushOrder* b) { return a->request_id < b->request_id; });
  const SyncContext ctx = Context(self);
  for (const PushOrder* o : order) {
    if (std::optional<DomainEvent> dead = WithdrawnAtStart(o->request, ctx)) {
      // Settled as its connector's report would settle it (RecordReport).
      EnqueueOwn(
          self,
          caf::make_message(PushReport{
              st.tenant, st.contact_id, {std::move(*dead)}, o->request_id, o->correlation_id}));
      continue;
    }
    PushOrder again = *o;
    again.redriven = true;  // it may have been carried out before the restart
    Order(self, again);
  }
}

}  // namespace

caf::behavior ContactActor(Self* self, std::shared_ptr<const SyncEnv> env, caf::actor router,
                           std::string tenant, std::string contact_id, bool redrive) {
  auto& st = self->state;
  st.env = std::move(env);
  st.router = std::move(router);
  st.tenant = std::move(tenant);
  st.contact_id = std::move(contact_id);
  st.model.contact_id = st.contact_id;
  st.model.message_memory_us = st.env->ContextFor(st.tenant).message_memory_us;
  Status s = Recover(self);
  if (!s.ok()) {
    Logger("actors")->error("event=contact_recover_failed contact={} error=\"{}\"", st.contact_id,
                            s.ToString());
    self->quit(caf::make_error(caf::sec::runtime_error, s.ToString()));
    return {};
  }
  MaybeSnapshot(self, /*always=*/false);  // a long stream folded: not again next time
  if (redrive) RedriveAtStart(self);
  self->send(st.router, started_atom::value);
  FellIdle(self);
  return {
      [self](RoutedFact& f) { Enqueue(self, caf::make_message(std::move(f))); },
      [self](PushReport& r) { Enqueue(self, caf::make_message(std::move(r))); },
      [self](Redrive& r) { Enqueue(self, caf::make_message(std::move(r))); },
      [self](AppendResult& r) {
        auto& state = self->state;
        if (!state.busy || r.token != state.token) return;  // an answer to an append retried since
        if (!r.error.empty()) {
          Logger("actors")->warn("event=append_refused contact={} error=\"{}\" retry_in_us={}",
                                 state.contact_id, r.error, state.env->append_retry_us);
          self->delayed_send(self, std::chrono::microseconds(state.env->append_retry_us),
                             retry_atom::value, r.token);
          return;
        }
        auto then = std::move(state.then);
        if (then) then(r);
        state.since_snapshot += r.seqs.size();
        MaybeSnapshot(self, /*always=*/false);
        Next(self);
      },
      [self](erase_atom) {
        // contact.erased (app/erase.h): forget the person once the work
        // routed before it (the facts of webhooks earlier in the log) is
        // decided against what the person was, its opt-outs ordered; what
        // it appends is sealed with the destroyed key, unreadable. From
        // now on only consent pushes are ordered and no snapshot is kept.
        auto& state = self->state;
        state.erased = true;
        state.work.push_back(caf::make_message(erase_atom::value));
        if (!state.busy) Next(self);
        // What it ordered before is dropped at the connectors; sent from
        // here, the cancel comes after those orders (the router's may not).
        for (const caf::actor& c : state.env->ConnectorsOf(state.tenant))
          self->send(c, PushCancel{state.tenant, "", "the contact was erased", state.contact_id});
        Logger("actors")->info("event=contact_erased contact={}", state.contact_id);
      },
      [self](retry_atom, uint64_t token) {
        auto& state = self->state;
        if (!state.busy || token != state.token) return;
        Append(self, std::move(state.drafts), std::move(state.events), std::move(state.then));
      },
      [self](idle_atom) {
        auto& state = self->state;
        state.idle_timer_set = false;
        if (state.busy || !state.work.empty()) return;  // set again when it falls idle
        const auto idle_for = self->clock().now() - state.idle_since;
        if (idle_for < IdleLimit(state)) {  // busy meanwhile
          SetIdleTimer(self, IdleLimit(state) - idle_for);
          return;
        }
        self->request(state.router, caf::infinite, passivate_atom::value, state.tenant, state.contact_id,
                      state.received)
            .then([self](bool agreed) {
              if (!agreed) return;
              MaybeSnapshot(self, /*always=*/true);
              self->quit();
            });
      },
  };
}

}  // namespace dfm
